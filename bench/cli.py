"""``python -m bench`` (edge: orchestrates processes), run from the repository root.

Sections (each can be picked with ``--sections``):

* **capacity** — the reference agent pinned to one CPU, one caller worker pinned to another,
  callers stepped up; per step the worker's CPU, frames/s against real time, frame lateness,
  receive lag. The same run gives **accuracy** (the callers' per-turn log matched against the
  agent's ground truth, per load level) and the **CPU and memory cost** per caller; then one
  more step at the capacity figure with the agent serving wss:// gives the accuracy over TLS;
* **scaleout** — 1 and 2 workers against one agent, stepped per worker;
* **agent** — the simulator's own capacity bench (:mod:`bench.agent`);
* **coldstart** — Locust process start until the first frame, with and without an audio pull;
* **profile** — py-spy samples of a worker at the capacity load (when py-spy is installed);
* **hotpath** — instructions per caller frame of a fixed workload on a virtual clock
  (:mod:`bench.hotpath`, under valgrind's callgrind: the same on any machine);
* **master** — one real Locust master and N simulated workers speaking Locust's protocol
  (:mod:`bench.master`): how many workers and callers one master carries.

``make bench`` refuses to run (exit 2, one line) when the machine is busy — the 1-minute load
average at start above :data:`MAX_LOAD_PER_CPU` per usable CPU, or, on a virtual machine,
the hypervisor taking more than :data:`MAX_STEAL_PERCENT` of the CPUs' time while a short
probe keeps them busy — because the figures would describe the other load; ``--force`` runs
anyway (the page records the load average and the time stolen, per step too), and
``--quick`` (a smoke run whose figures are not judged) never refuses.

Writes the results as JSON (``--json``) and as ``--out`` markdown (tables, the machine, the
command). ``--target-…`` options add a table that judges the run against your own targets.
``--from-json FILE`` renders ``--out`` from an earlier run's JSON without measuring — or from
a page it wrote, whose raw results it reads back (``--from-json docs/benchmarks.md --out
docs/benchmarks.md`` renders the published run again after a change to the report).
``--quick`` runs a reduced set in well under two minutes; CI runs it to keep the benchmark
from rotting (it never asserts speed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.analysis import MAX_STEAL_PERCENT, capacity
from bench.measure import cpu_ticks, steal_percent
from bench.procs import machine, python_speed, start_agent, steal_probe, stop
from bench.report import TARGETS, recorded_results, render_markdown
from bench.sections import (
    AGENT_ARGS,
    Plan,
    agent_section,
    capacity_section,
    hotpath_section,
    profile_section,
    say,
    scale_out_section,
)

__all__ = ["add_bench_arguments", "main", "run_bench"]

SECTIONS = ("capacity", "scaleout", "agent", "coldstart", "profile", "hotpath", "master")
MAX_LOAD_PER_CPU = 0.25
"""The 1-minute load average per usable CPU above which a full run refuses to start (0.5 on
the 2-CPU machines the published figures come from: the quiet runs had 0.2-0.3)."""


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``python -m bench`` options."""
    parser.add_argument("--quick", action="store_true", help="reduced set, < 2 minutes (CI)")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/benchmarks.md"), help="markdown report to write"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--pcm-dir",
        type=Path,
        default=Path(os.environ.get("PCM_DIR", "audio_cache")),
        help="audio cache (generated offline with espeak-ng into a temp folder if missing)",
    )
    parser.add_argument("--steps", help="callers per step, e.g. 50,100,200,400 (capacity)")
    parser.add_argument("--step-s", type=float, help="measurement window per step (s)")
    parser.add_argument("--settle-s", type=float, help="wait after ramping a step (s)")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma list of {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--logs", type=Path, help="keep process logs and raw files here")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="render --out from an earlier run's --json file, or from the results a page it "
        "wrote embeds, instead of measuring",
    )
    targets = parser.add_argument_group(
        "targets", "judged in the report when given (none: the report has no targets table)"
    )
    for name, text in TARGETS.items():
        targets.add_argument(
            f"--target-{name.replace('_', '-')}",
            dest=f"target_{name}",
            type=_positive,
            metavar="N",
            help=text.format("N"),
        )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run even when the machine is busy (load average above "
        f"{MAX_LOAD_PER_CPU:g} per CPU at start, or more than {MAX_STEAL_PERCENT:g} %% of "
        "the busy CPUs' time taken by the hypervisor)",
    )
    parser.set_defaults(handler=run_bench)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _targets(args: argparse.Namespace) -> dict[str, float]:
    return {
        name: value
        for name in TARGETS
        if (value := getattr(args, f"target_{name}", None)) is not None
    }


def _audio(pcm_dir: Path, work: Path) -> Path:
    if (pcm_dir / "manifest.jsonl").is_file():
        return pcm_dir
    from loadtest.audio.generate import GenerateOptions, generate_audio
    from loadtest.audio.scenarios import BUILTIN_SCENARIOS
    from loadtest.audio.tts import make_engine

    out = work / "audio_cache"
    say(f"{pcm_dir} has no audio cache: generating one offline into {out}")
    generate_audio(
        list(BUILTIN_SCENARIOS.values()), make_engine("espeak", {}), GenerateOptions(out_dir=out)
    )
    return out


def _plan(args: argparse.Namespace) -> Plan:
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"bench: unknown section(s) {', '.join(unknown)}")
    if args.quick:
        plan = Plan(
            steps=(50, 150), step_s=5.0, settle_s=2.0, scale_fractions=(0.5,),
            agent_calls=(100,), agent_step_s=3.0, cold_runs=1,
            sections=tuple(s for s in sections if s not in ("profile", "hotpath")),
            master_workers=(3,), master_callers=20, master_s=4.0,
        )  # fmt: skip
    else:
        plan = Plan(
            steps=(100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200), step_s=10.0,
            settle_s=4.0, scale_fractions=(0.25, 0.5),
            agent_calls=(500, 750, 900, 1000, 1100, 1250), agent_step_s=8.0, cold_runs=3,
            sections=sections,
        )  # fmt: skip
    steps = plan.steps
    if args.steps:
        steps = tuple(int(s) for s in args.steps.split(",") if s.strip())
    return Plan(
        steps=steps,
        step_s=args.step_s or plan.step_s,
        settle_s=plan.settle_s if args.settle_s is None else args.settle_s,
        scale_fractions=plan.scale_fractions,
        agent_calls=plan.agent_calls,
        agent_step_s=plan.agent_step_s,
        cold_runs=plan.cold_runs,
        sections=plan.sections,
        master_workers=plan.master_workers,
        master_callers=plan.master_callers,
        master_s=plan.master_s,
    )


# ---------------------------------------------------------------------- entry points


def run_bench(args: argparse.Namespace) -> int:
    """Run the selected sections; write ``--json`` and ``--out``. Returns 0 (2: an unreadable
    ``--from-json``)."""
    if args.from_json is not None:
        return _render_only(args)
    plan = _plan(args)
    cpus = sorted(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    if not (args.quick or args.force) and load > MAX_LOAD_PER_CPU * len(cpus):
        print(
            f"bench: the machine is busy (1-minute load average {load:.2f}, above "
            f"{MAX_LOAD_PER_CPU:g} per CPU × {len(cpus)}): its figures would describe the "
            "other load; wait for a quiet machine or pass --force",
            file=sys.stderr,
        )
        return 2
    stolen = None if args.quick else steal_probe(cpus)
    if not (args.quick or args.force) and stolen is not None and stolen > MAX_STEAL_PERCENT:
        print(
            f"bench: the hypervisor took {stolen:g} % of the CPUs' time while they were busy "
            f"(steal, above {MAX_STEAL_PERCENT:g} %): other guests share this machine's CPUs "
            "and its figures would describe them; try again later or pass --force",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    ticks = cpu_ticks()
    results: dict[str, Any] = {
        "schema": 1,
        "command": getattr(args, "command_line", None)
        or shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
        "quick": bool(args.quick),
        "machine": {**machine(), "steal_probe_percent": stolen},
        "targets": _targets(args),
        "settings": {
            "steps": list(plan.steps),
            "step_s": plan.step_s,
            "settle_s": plan.settle_s,
            "agent_args": " ".join(AGENT_ARGS),
            "greeting": "off",
            "barge_in_rate": 0.3,
            "sections": list(plan.sections),
        },
    }
    with tempfile.TemporaryDirectory(prefix="voice-bench-") as tmp:
        work = args.logs or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        pcm_dir = _audio(args.pcm_dir, work)
        results["settings"]["pcm_dir"] = str(pcm_dir)
        held = 0
        if "capacity" in plan.sections:
            say(f"capacity: steps {', '.join(map(str, plan.steps))} callers")
            results["capacity"], results["accuracy"], results["cost"] = capacity_section(
                plan, pcm_dir, cpus, work
            )
            held = results["capacity"]["callers_per_core"]
        if "scaleout" in plan.sections:
            results["scale_out"] = scale_out_section(plan, held, pcm_dir, cpus, work)
        if "agent" in plan.sections:
            results["agent"] = agent_section(plan, cpus, work)
        if "coldstart" in plan.sections:
            from bench.coldstart import measure_cold_start

            agent = start_agent(cpus=None, ground_truth=None, log=work / "agent-cold.log",
                                args=AGENT_ARGS)  # fmt: skip
            try:
                results["cold_start"] = measure_cold_start(
                    agent.url, pcm_dir, runs=plan.cold_runs, log=work / "cold-start.log"
                )
            finally:
                stop([agent.process])
            say(f"cold start {results['cold_start']}")
        if "profile" in plan.sections:
            results["profile"] = profile_section(plan, held, pcm_dir, cpus, work)
        if "hotpath" in plan.sections:
            say("hot path: instructions per frame under callgrind (a few minutes)")
            results["hotpath"] = hotpath_section(plan, pcm_dir, work)
        if "master" in plan.sections:
            from bench.master import master_section

            say(f"master: {', '.join(map(str, plan.master_workers))} simulated workers")
            results["master"] = master_section(
                plan.master_workers, plan.master_callers, plan.master_s, cpus, work
            )
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["steal_percent"] = steal_percent(ticks, cpu_ticks())
    results["machine"]["python_speed_end"] = python_speed()
    results["duration_s"] = round(time.monotonic() - started, 1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_markdown(results))
    say(f"done in {results['duration_s']} s: {args.out}" + (f", {args.json}" if args.json else ""))
    return 0


def _render_only(args: argparse.Namespace) -> int:
    try:
        results = recorded_results(args.from_json.read_text())
    except (OSError, ValueError) as exc:
        print(f"bench: error: cannot read {args.from_json}: {exc}", file=sys.stderr)
        return 2
    if _targets(args):
        results["targets"] = _targets(args)
    try:
        cap = results.get("capacity")
        if isinstance(cap, dict) and isinstance(cap.get("steps"), list):
            # the figure as this version judges the recorded steps (as the page's table does)
            cap["callers_per_core"] = capacity(cap["steps"])
            accuracy = results.get("accuracy")
            if isinstance(accuracy, dict) and "capacity_callers" in accuracy:
                accuracy["capacity_callers"] = cap["callers_per_core"]
        page = render_markdown(results)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        print(
            f"bench: error: {args.from_json} is not a benchmark result written by "
            f"`python -m bench --json` ({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    say(f"rendered {args.from_json} into {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the harness: callers per worker core, accuracy against the "
        "agent's ground truth, CPU and memory per caller, scale-out, agent capacity, cold "
        "start. Writes markdown (--out) and JSON (--json).",
    )
    add_bench_arguments(parser)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "bench", *argv])
    return int(args.handler(args))
