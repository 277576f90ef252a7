"""The benchmark's sections (edge: starts the agent and workers, reads what they report).

Each ``*_section`` function runs one part of ``make bench`` and returns its JSON-ready result;
:mod:`bench.cli` picks them and writes the report.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.analysis import (
    capacity,
    cpu_ms_per_caller_s,
    error_stats,
    linear_fit,
    match_turns,
    pool_steps,
    step_holds,
    step_judged,
)
from bench.procs import bench_env, start_agent, start_worker, stop
from bench.tlsfiles import TlsFiles, make_tls_files

__all__ = [
    "AGENT_ARGS",
    "Plan",
    "agent_section",
    "capacity_cpus",
    "capacity_section",
    "hotpath_section",
    "profile_section",
    "say",
    "scale_out_section",
]

AGENT_ARGS = ("--latency-ms", "600", "--barge-latency-ms", "150")
_STALL_S = 120.0  # a worker that prints nothing for this long is stuck


@dataclass(frozen=True)
class Plan:
    """What to run: steps, windows and sections."""

    steps: tuple[int, ...]
    step_s: float
    settle_s: float
    scale_fractions: tuple[float, ...]
    agent_calls: tuple[int, ...]
    agent_step_s: float
    cold_runs: int
    sections: tuple[str, ...]
    master_workers: tuple[int, ...] = (10, 100, 250, 500, 1000, 1500, 2000)
    master_callers: int = 200  # callers per simulated worker: 500 workers are 100k callers
    master_s: float = 15.0
    hotpath_callers: int = 200
    hotpath_s: float = 8.0


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _step_line(step: dict[str, Any]) -> str:
    late = step["lateness_ms"]
    cpu = step.get("cpu_percent", step.get("cpu_percent_max"))
    agent = step.get("agent_cpu_percent")
    return (
        f"{step['callers']:5d} callers  cpu {cpu}%  agent cpu {agent}%  "
        f"rate {step['frame_rate_ratio']}  lateness p50 {late['p50'] or 0:.2f} "
        f"p99 {late['p99'] or 0:.2f} max {late['max'] or 0:.1f} ms  "
        f"{'holds' if step_holds(step) else 'FAILS' if step_judged(step) else 'not judged'}"
    )


def _public(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if not k.endswith("_hist") and k != "event"}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------- sections


def capacity_cpus(cpus: list[int]) -> tuple[set[int] | None, set[int] | None]:
    """The agent's CPUs and the worker's in the capacity run (``None``: one CPU, unpinned).

    The worker gets one CPU; the agent every other, one process per CPU: an agent process
    needs about as much CPU per call as the worker per caller, so with one process on a
    larger machine the steps would measure the agent.
    """
    if len(cpus) < 2:
        return None, None
    return set(cpus[:-1]), {cpus[-1]}


def _agent_args(agent_cpus: set[int] | None) -> tuple[str, ...]:
    """The reference agent's options with one simulator process per CPU it was given."""
    processes = len(agent_cpus or ())
    return (*AGENT_ARGS, *(("--processes", str(processes)) if processes > 1 else ()))


def capacity_section(
    plan: Plan, pcm_dir: Path, cpus: list[int], work: Path
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Callers per core (the steps over ws://), their accuracy and cost; then the accuracy
    again over wss:// at the capacity figure (``accuracy["tls"]``): most production agents
    speak TLS, where the caller stamps what OpenSSL reads by peeking (see the transport)."""
    agent_cpus, worker_cpus = capacity_cpus(cpus)
    processes = len(agent_cpus or ())
    truth, turns = work / "ground-truth.jsonl", work / "turns.jsonl"
    steps, ready = _steps_run(plan, plan.steps, pcm_dir, cpus, work, truth, turns, "capacity")
    held = capacity(steps)
    result = {
        "agent_cpus": sorted(agent_cpus or []),
        "agent_processes": max(1, processes),
        "worker_cpus": sorted(worker_cpus or []),
        "pinned": agent_cpus is not None,
        "steps": [_public(s) for s in steps],
        "callers_per_core": held,
    }
    accuracy = _accuracy(steps, turns, truth, held)
    tls_callers = held or plan.steps[0]
    tls_truth, tls_turns = work / "ground-truth-tls.jsonl", work / "turns-tls.jsonl"
    tls_steps, _ = _steps_run(
        plan, (tls_callers,), pcm_dir, cpus, work, tls_truth, tls_turns, "capacity over TLS",
        tls=make_tls_files(work),
    )  # fmt: skip
    if tls_steps:
        tls = _accuracy(tls_steps, tls_turns, tls_truth, held)
        accuracy["tls"] = {**tls["levels"][0], "step": _public(tls_steps[0])}
    return result, accuracy, _cost(steps, ready)


def _steps_run(
    plan: Plan,
    callers: tuple[int, ...],
    pcm_dir: Path,
    cpus: list[int],
    work: Path,
    truth: Path,
    turns: Path,
    label: str,
    tls: TlsFiles | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One caller worker stepping through ``callers`` against one reference agent (over
    wss:// with ``tls``), pinned as :func:`capacity_cpus` says; stops after two failing
    steps. The steps' records and the worker's ``ready`` record."""
    agent_cpus, worker_cpus = capacity_cpus(cpus)
    log = label.replace(" ", "-")
    agent = start_agent(cpus=agent_cpus, ground_truth=truth, log=work / f"agent-{log}.log",
                        args=_agent_args(agent_cpus), tls=tls)  # fmt: skip
    steps: list[dict[str, Any]] = []
    ready: dict[str, Any] = {}
    try:
        worker = start_worker(
            url=agent.url, pcm_dir=pcm_dir, steps=callers, settle_s=plan.settle_s,
            step_s=plan.step_s, cpus=worker_cpus, log=work / f"worker-{log}.log",
            turn_log=turns, agent_pid=agent.process.pid, ca_bundle=None if tls is None else tls.ca,
        )  # fmt: skip
        try:
            failing = 0
            for record in worker.records(_STALL_S):
                if record["event"] == "ready":
                    ready = record
                elif record["event"] == "step":
                    steps.append(record)
                    say(f"{label} " + _step_line(record))
                    if not step_judged(record):
                        continue  # the host took the CPU: neither a hold nor a failure
                    failing = 0 if step_holds(record) else failing + 1
                    if failing >= 2:
                        break
        finally:
            stop([worker.process], grace_s=30)
    finally:
        stop([agent.process], grace_s=30)
    return steps, ready


def _accuracy(steps: list[dict[str, Any]], turns: Path, truth: Path, held: int) -> dict[str, Any]:
    harness, agent = _read_jsonl(turns), _read_jsonl(truth)
    levels = []
    for step in steps:
        window = (int(step["started_ns"]), int(step["ended_ns"]))
        stats = error_stats(match_turns(harness, agent, window=window))
        levels.append({"callers": step["callers"], "holds": step_holds(step), **stats})
    return {"harness_turns": len(harness), "agent_turns": len(agent), "levels": levels,
            "capacity_callers": held}  # fmt: skip


def _cost(steps: list[dict[str, Any]], ready: dict[str, Any]) -> dict[str, Any]:
    holding = [s for s in steps if step_holds(s)]
    cpu_fit = linear_fit((s["callers"], s["cpu_percent"]) for s in holding)
    rss_fit = linear_fit((s["callers"], s["rss_kb"]) for s in steps)
    per_step = [
        {
            "callers": s["callers"],
            "cpu_ms_per_caller_s": round(cpu_ms_per_caller_s(s["cpu_percent"], s["callers"]), 3),
            "rss_mb": round(s["rss_kb"] / 1024, 1),
        }
        for s in steps
    ]
    return {
        "cpu_ms_per_caller_s": None
        if cpu_fit is None
        else round(cpu_ms_per_caller_s(cpu_fit[0], 1), 3),
        "cpu_fixed_percent": None if cpu_fit is None else round(cpu_fit[1], 1),
        "rss_kb_per_caller": None if rss_fit is None else round(rss_fit[0], 1),
        "rss_mb_per_100_callers": None if rss_fit is None else round(rss_fit[0] * 100 / 1024, 2),
        "rss_mb_start": round(ready.get("rss_kb", 0) / 1024, 1) if ready else None,
        "per_step": per_step,
    }


def scale_out_section(
    plan: Plan, held: int, pcm_dir: Path, cpus: list[int], work: Path
) -> dict[str, Any]:
    """1 worker, then 2, each stepping through the same per-worker loads (fractions of the
    capacity figure, so the one agent process serves at most the capacity run's load)."""
    if len(cpus) < 2:
        return {"skipped": "needs at least 2 CPUs"}
    base = held or plan.steps[0]
    per_worker = sorted({max(10, round(base * f / 10) * 10) for f in plan.scale_fractions})
    if len(cpus) >= 3:
        agent_cpus: set[int] | None = {cpus[0]}
        worker_cpus = [cpus[1], cpus[2]]
    else:
        agent_cpus, worker_cpus = None, [cpus[1], cpus[0]]
    configs: list[dict[str, Any]] = []
    for count in (1, 2):
        agent = start_agent(cpus=agent_cpus, ground_truth=None,
                            log=work / f"agent-scale{count}.log", args=AGENT_ARGS)  # fmt: skip
        pooled: list[dict[str, Any]] = []
        try:
            workers = [
                start_worker(
                    url=agent.url,
                    pcm_dir=pcm_dir,
                    steps=per_worker,
                    settle_s=plan.settle_s,
                    step_s=plan.step_s,
                    cpus={worker_cpus[i]},
                    agent_pid=agent.process.pid,
                    log=work / f"worker-scale{count}-{i}.log",
                )
                for i in range(count)
            ]
            try:
                streams = [w.records(_STALL_S) for w in workers]
                failing = 0
                while failing < 2:
                    parts = [_next_step(stream) for stream in streams]
                    if any(p is None for p in parts):
                        break
                    step = pool_steps([p for p in parts if p is not None])
                    pooled.append(step)
                    say(f"scale-out {count} worker(s) " + _step_line(step))
                    failing = 0 if step_holds(step) else failing + 1
            finally:
                stop([w.process for w in workers], grace_s=30)
        finally:
            stop([agent.process], grace_s=30)
        configs.append(
            {"workers": count, "worker_cpus": worker_cpus[:count], "steps": pooled,
             "held": capacity(pooled)}
        )  # fmt: skip
    one, two = int(configs[0]["held"]), int(configs[1]["held"])
    cpu = [
        {"per_worker": n, "one_worker": a["cpu_percent_max"], "two_workers": b["cpu_percent_max"]}
        for n, a, b in zip(per_worker, configs[0]["steps"], configs[1]["steps"], strict=False)
    ]
    return {
        "agent_cpus": sorted(agent_cpus) if agent_cpus else "unpinned (shares the workers' CPUs)",
        "per_worker_steps": per_worker,
        "configs": configs,
        "ratio": round(two / one, 2) if one else None,
        # With 2 CPUs the agent has none of its own: the second worker shares one with it, so
        # the ratio measures that contention, not how workers scale.
        "judged": len(cpus) >= 3,
        "worker_cpu_percent": cpu,
    }


def _next_step(stream: Any) -> dict[str, Any] | None:
    for record in stream:
        if record.get("event") == "step":
            return dict(record)
    return None


_AGENT_LINE = re.compile(
    r"calls=\s*(\d+) cpu=\s*([\d.]+)% lateness p50<=([\d.e+-]+)ms p99<=([\d.e+-]+)ms "
    r"loop_lag_max=([\d.]+)ms audio=([\d.]+) dropped=(\d+) (holds|FAILS)"
)


_AGENT_CRITERIA = "reply-frame lateness p99 <= 20 ms, >= 98 % of the reply audio, no drops"
_AGENT_OTHER_MODES = {"unique": None, "none": (1000, 1500, 2000, 2500)}
"""Caller audio besides the headline ``noise`` (steps: ``None`` = the plan's agent steps)."""


def agent_section(plan: Plan, cpus: list[int], work: Path) -> dict[str, Any]:
    """The simulator's capacity with callers streaming comfort noise (what the harness sends
    while it listens: the headline), then — in a full run — with audio that never repeats
    and with callers that send nothing."""
    if len(cpus) < 2:
        return {"skipped": "needs at least 2 CPUs"}
    result = _agent_run(plan, plan.agent_calls, "noise", cpus, work)
    if len(plan.agent_calls) > 1:  # not in --quick
        result["other_modes"] = {
            mode: _agent_run(plan, calls or plan.agent_calls, mode, cpus, work)
            for mode, calls in _AGENT_OTHER_MODES.items()
        }
    return result


def _agent_run(
    plan: Plan, calls: tuple[int, ...], mode: str, cpus: list[int], work: Path
) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "bench.agent",
        "--calls", ",".join(str(c) for c in calls), "--caller-audio", mode,
        "--step-s", str(plan.agent_step_s), "--settle-s", "2" if len(calls) > 1 else "1",
        "--server-cpu", str(cpus[0]), "--client-cpu", str(cpus[1]),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=bench_env())
    (work / f"agent-bench-{mode}.log").write_text(done.stdout + done.stderr)
    steps = []
    for match in _AGENT_LINE.finditer(done.stdout):
        count, cpu, p50, p99, lag, audio, dropped, verdict = match.groups()
        steps.append({
            "calls": int(count), "cpu_percent": float(cpu), "lateness_p50_ms": float(p50),
            "lateness_p99_ms": float(p99), "loop_lag_max_ms": float(lag),
            "audio_ratio": float(audio), "dropped": int(dropped), "holds": verdict == "holds",
        })  # fmt: skip
        say(f"agent ({mode}) {match.group(0)}")
    held = [s["calls"] for s in steps if s["holds"]]
    return {
        "command": shlex.join(["python", "-m", *command[2:]]),
        "caller_audio": mode,
        "criteria": _AGENT_CRITERIA,
        "steps": steps,
        "max_calls_held_one_core": max(held) if held else 0,
        "exit_code": done.returncode,
    }


def profile_section(
    plan: Plan, held: int, pcm_dir: Path, cpus: list[int], work: Path
) -> dict[str, Any]:
    from bench.profile import categorize, record

    callers = held or plan.steps[0]
    agent_cpus, worker_cpus = capacity_cpus(cpus)  # the capacity run's layout
    agent = start_agent(cpus=agent_cpus, ground_truth=None, log=work / "agent-profile.log",
                        args=_agent_args(agent_cpus))  # fmt: skip
    raw = None
    try:
        worker = start_worker(
            url=agent.url, pcm_dir=pcm_dir, steps=[callers, callers], settle_s=plan.settle_s,
            step_s=plan.step_s, cpus=worker_cpus, log=work / "worker-profile.log",
        )  # fmt: skip
        try:
            for item in worker.records(_STALL_S):
                if item["event"] == "step":  # profile the second window
                    raw = record(worker.process.pid, plan.step_s - 1, work / "profile.txt")
                    break
        finally:
            stop([worker.process], grace_s=30)
    finally:
        stop([agent.process], grace_s=30)
    if raw is None:
        return {"skipped": "py-spy is not installed or may not attach (pip install py-spy)"}
    return {"callers": callers, "tool": "py-spy record --native", **categorize(raw)}


def hotpath_section(plan: Plan, pcm_dir: Path, work: Path) -> dict[str, Any]:
    """Instructions per caller frame of the fixed hot-path workload (callgrind), when
    valgrind is installed. In a child process: the workload monkey-patches gevent."""
    import shutil

    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed (apt-get install valgrind)"}
    command = [
        sys.executable, "-m", "bench.hotpath", "--pcm-dir", str(pcm_dir),
        "--callers", str(plan.hotpath_callers), "--seconds", str(plan.hotpath_s),
        "--callgrind", "--work", str(work / "callgrind"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=bench_env())
    (work / "hotpath.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        return {"skipped": f"the workload failed (exit {done.returncode}, see hotpath.log)"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "seconds": plan.hotpath_s}
