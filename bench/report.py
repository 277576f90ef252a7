"""``docs/benchmarks.md`` from the benchmark's results (core: pure, dict in, markdown out)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bench.analysis import (
    MAX_P99_MS,
    MAX_RECEIVE_LAG_P99_MS,
    MAX_STEAL_PERCENT,
    RATE_TOLERANCE,
    cpu_ms_per_caller_s,
    step_holds,
    step_judged,
)
from bench.report_scale import hotpath_lines, master_lines

__all__ = ["TARGETS", "headline", "recorded_results", "render_markdown"]

TARGETS: dict[str, str] = {
    "callers_per_core": "real-time callers per worker core ≥ {}",
    "error_p99_ms": "TTFB and barge-in error p99 at the capacity figure ≤ {} ms",
    "scale_out": "2 workers carry ≥ {}× the callers of 1",
    "kb_per_caller": "memory per caller ≤ {} KB",
    "agent_calls": "agent simulator: concurrent calls per core ≥ {}",
    "master_workers": "one master carries ≥ {} workers",
    "master_callers": "one master carries ≥ {} callers",
}
"""The targets a user may set (``python -m bench --target-<name> VALUE``) → how the report
states them. The page judges only the targets given."""
_LOWER_IS_BETTER = frozenset({"error_p99_ms", "kb_per_caller"})

_LIMITS = """## What limits these figures

How the caller is built to stay on time, what a worker core spends its time on, what would
lift each part, and how the agent on the same machine bends the figures:
[performance.md](performance.md).
"""


def _f(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _level(accuracy: Mapping[str, Any], callers: int) -> Mapping[str, Any] | None:
    levels: list[Mapping[str, Any]] = accuracy.get("levels", [])
    for level in levels:
        if level["callers"] == callers:
            return level
    return None


def _worst_p99(level: Mapping[str, Any] | None) -> float | None:
    if level is None:
        return None
    values = [
        level[k]["p99"] for k in ("ttfb_abs_error_ms", "barge_in_abs_error_ms") if level[k]["count"]
    ]
    return max(values) if values else None


def headline(results: Mapping[str, Any]) -> str:
    """The page's summary sentence: capacity, and the accuracy at that load."""
    cap = results.get("capacity", {}).get("callers_per_core")
    accuracy = results.get("accuracy", {})
    parts = []
    if _no_figure(results.get("capacity", {})):
        parts.append(
            "no capacity figure: the host took the worker's CPU (steal) in every step below the "
            "first one that failed on its own, so none could be judged — re-run on a quieter "
            "machine"
        )
    elif cap is not None:
        parts.append(
            f"one worker core carries **{cap} real-time callers** (frame lateness and receive "
            f"lag p99 ≤ {MAX_P99_MS:g} ms, frame rate within {RATE_TOLERANCE:.0%} of real time)"
        )
    level = _level(accuracy, cap) if cap else None
    if level is not None and level["ttfb_abs_error_ms"]["count"]:
        parts.append(
            f"at that load TTFB is measured within **{_f(level['ttfb_abs_error_ms']['p99'], 2)} "
            f"ms (p99)** and barge-in within **{_f(level['barge_in_abs_error_ms']['p99'], 2)} "
            "ms** of the agent's own ground truth"
        )
        tls = accuracy.get("tls")
        if tls and tls["callers"] == cap and tls["ttfb_abs_error_ms"]["count"]:
            parts.append(
                f"over TLS (wss://) within {_f(tls['ttfb_abs_error_ms']['p99'], 2)} ms and "
                f"{_f(tls['barge_in_abs_error_ms']['p99'], 2)} ms"
            )
    step = next(
        (st for st in results.get("capacity", {}).get("steps", []) if st["callers"] == cap), None
    )
    if step is not None and _agent_bound(step):
        parts.append(
            f"the reference agent was at {_f(step['agent_cpu_percent'])} % of its CPU there, so "
            "the worker's figure is a lower bound and most of that error is the agent reading "
            "late (see the accuracy table's caller→agent leg)"
        )
    text = "; ".join(parts) if parts else "no capacity figures in this run"
    return text[0].upper() + text[1:] + "."


def _machine(results: Mapping[str, Any]) -> list[str]:
    m = results.get("machine", {})
    packages = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())
    rows = [
        ["Date (UTC)", m.get("date")],
        ["CPU", f"{m.get('cpu_model')} — {m.get('cpus')} CPUs ({m.get('cpus_usable')} usable)"],
        ["Python", f"{m.get('python')} on {m.get('platform')}"],
        ["Packages", packages],
        [
            "Load average (1/5/15 min) at start → end",
            f"{m.get('load_average')} → {m.get('load_average_end')}",
        ],
        [
            "Python speed at start → end (M iterations/s of a fixed workload; compare runs)",
            f"{m.get('python_speed', '–')} → {m.get('python_speed_end', '–')}",
        ],
        [
            "Python speed in ~3 ms blocks for 3 s at start: slowest / median / fastest "
            "(how far the CPU's speed moves within a second)",
            " / ".join(str(v) for v in m.get("python_speed_swing") or ["–"]),
        ],
        [
            "CPU time taken by the hypervisor (steal): start probe, all CPUs busy → whole run",
            f"{_f(m.get('steal_probe_percent'), unit=' %')} → "
            f"{_f(m.get('steal_percent'), unit=' %')}",
        ],
        ["Command", f"`{results.get('command')}`"],
        [
            "Duration",
            f"{results.get('duration_s')} s" + (" (quick mode)" if results.get("quick") else ""),
        ],
    ]
    return ["## Machine", "", *_table(["", ""], rows)]


def _status(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


_AGENT_BOUND_PERCENT = 90.0


def _agent_bound(step: Mapping[str, Any]) -> bool:
    agent = step.get("agent_cpu_percent")
    return agent is not None and agent >= _AGENT_BOUND_PERCENT


def _targets(results: Mapping[str, Any]) -> list[str]:
    """The targets given on the command line, each judged against this run (none given: no
    section)."""
    targets: Mapping[str, float] = results.get("targets") or {}
    if not targets:
        return []
    if results.get("quick"):
        return [
            "## Targets",
            "",
            "Not judged: this is a `--quick` smoke run (two small steps), not a capacity "
            "measurement. Run `make bench` for the figures.",
            "",
        ]
    cap = results.get("capacity", {}).get("callers_per_core")
    scale_out = results.get("scale_out", {})
    error = _worst_p99(_level(results.get("accuracy", {}), cap) if cap else None)
    kb = results.get("cost", {}).get("rss_kb_per_caller")
    agent = results.get("agent", {}).get("max_calls_held_one_core")
    master = results.get("master", {})
    figures: dict[str, tuple[float | None, str]] = {  # target name → (value, as shown)
        "callers_per_core": (cap, _f(cap)),
        "error_p99_ms": (error, _f(error, 2, " ms")),
        "scale_out": (scale_out.get("ratio"), _f(scale_out.get("ratio"), 2, "×")),
        "kb_per_caller": (kb, _f(kb, 1, " KB")),
        "agent_calls": (agent, _f(agent)),
        "master_workers": (master.get("max_workers"), _f(master.get("max_workers"))),
        "master_callers": (master.get("max_callers"), _f(master.get("max_callers"))),
    }
    rows = []
    for name, target in targets.items():
        value, shown = figures[name]
        if value is None:
            status = "not measured in this run"
        elif name == "scale_out" and not scale_out.get("judged", True):
            status = "not judged: needs ≥ 3 CPUs (see scale-out)"
        else:
            status = _status(value <= target if name in _LOWER_IS_BETTER else value >= target)
        rows.append([TARGETS[name].format(f"{target:g}"), shown, status])
    return [
        "## Targets",
        "",
        "As given to this run (`--target-…`), judged against its figures.",
        "",
        *_table(["target", "this run", ""], rows),
    ]


def _capacity(results: Mapping[str, Any]) -> list[str]:
    cap = results.get("capacity")
    if not cap:
        return []
    settings = results.get("settings", {})
    processes = cap.get("agent_processes", 1)
    pinned = (
        f"the agent pinned to CPU {cap['agent_cpus']}"
        + (f" ({processes} processes; its CPU % is their mean)" if processes > 1 else "")
        + f", the worker to CPU {cap['worker_cpus']}"
        if cap.get("pinned")
        else "one CPU only: nothing pinned"
    )
    rows = []
    for s in cap["steps"]:
        late, lag = s["lateness_ms"], s["receive_lag_ms"]
        verdict = "holds" if step_holds(s) else "**fails**"
        if not step_judged(s):
            verdict = f"not judged ({_f(s['steal_percent'])} % of its CPU stolen)"
        elif _agent_bound(s):
            verdict += " (agent saturated)"
        rows.append([
            s["callers"], f"{_f(s['cpu_percent'])} ({_f(s.get('cpu_system_percent'))})",
            _f(s.get("agent_cpu_percent")),
            f"{s['frames'] / s['window_s']:,.0f} ({s['frames_target'] / s['window_s']:,.0f})",
            _f(s["frame_rate_ratio"], 4),
            f"{_f(late['p50'], 2)} / {_f(late['p99'], 2)} / {_f(late['max'], 1)}",
            f"{_f(lag['p99'], 1)} / {_f(lag['max'], 1)}",
            _f(s["ttfb_ms"]["p50"], 1), _gc(s.get("gc")), _f(s.get("steal_percent")),
            verdict,
        ])  # fmt: skip
    return [
        "## Capacity: callers per worker core",
        "",
        f"One caller worker (the Locust `VoiceUser`, call driver and transport in one process, "
        f"stepped by Locust's runner) against the reference agent ({settings.get('agent_args')}, "
        f"greeting off, 30 % of turns barge in), {pinned}. Every caller holds one long call "
        "with agent audio returning in real time after each turn. Per step the callers settle "
        f"for {settings.get('settle_s')} s, then a {settings.get('step_s')} s window is measured. "
        f"A step holds when frame lateness p99 ≤ {MAX_P99_MS:g} ms, the realised frame rate "
        f"is within {RATE_TOLERANCE:.0%} of real time and the event loop's receive lag p99 ≤ "
        f"{MAX_RECEIVE_LAG_P99_MS:g} ms (how late a 10 ms sleep wakes up, slept back to back "
        "through the window: a loop that wakes late also reads late, and a message read "
        "after its call's next frame went is counted as arriving then); "
        "stepping stops after two failing steps. The agent gets every CPU but the worker's, "
        "one process each, and its CPU is shown because it must serve every caller: where it "
        "saturates, its replies arrive in bursts and the figures past that point describe the "
        "agent as much as the worker. On a "
        "virtual machine the host may take the worker's CPU for other guests (steal): each "
        "slice taken is a pause no caller caused, so the share stolen in the window is shown, "
        f"and a step that fails with more than {MAX_STEAL_PERCENT:g} % stolen is not judged "
        "(it neither holds nor ends the count).",
        "",
        (
            "**Capacity: no figure.**"
            if _no_figure(cap)
            else f"**Capacity: {cap['callers_per_core']} callers per core.**"
        )
        + _bound_note(cap),
        "",
        *_table(
            [
                "callers",
                "worker CPU % (system)",
                "agent CPU %",
                "frames/s (target)",
                "realtime factor",
                "lateness p50 / p99 / max ms",
                "receive lag p99 / max ms",
                "TTFB p50 ms",
                "GC full passes (longest ms)",
                "worker CPU stolen %",
                "",
            ],
            rows,
        ),
    ]


def _gc(pauses: Mapping[str, Any] | None) -> str:
    """Full collections in the window and the longest pause of any collection."""
    if not pauses:
        return "–"
    return f"{pauses['passes'][2]} ({_f(pauses['max_ms'], 1)})"


def _no_figure(cap: Mapping[str, Any]) -> bool:
    """No step held and the first could not be judged (a first step that failed on its own
    is a figure: less than that step)."""
    steps = cap.get("steps") or []
    return not cap.get("callers_per_core") and bool(steps) and not step_judged(steps[0])


def _bound_note(cap: Mapping[str, Any]) -> str:
    if _no_figure(cap):
        unjudged = [s for s in cap["steps"] if not step_judged(s)]
        judged = len(cap["steps"]) - len(unjudged)
        return (
            f" No step held: {len(unjudged)} failed while the host took more than "
            f"{MAX_STEAL_PERCENT:g} % of the worker's CPU (not judged)"
            + (f" and {judged} failed on their own" if judged else "")
            + ". This run says nothing about the worker's capacity; re-run `make bench` on a "
            "quieter machine."
        )
    failing = [s for s in cap["steps"] if not step_holds(s) and step_judged(s)]
    if failing and _agent_bound(failing[0]):
        return (
            f" The first failing step had the agent at {_f(failing[0]['agent_cpu_percent'])} % "
            "of its CPU: the agent simulator, not the caller worker, set this limit — the "
            "worker's figure is at least this."
        )
    return ""


def _q(stats: Mapping[str, Any], digits: int = 2) -> str:
    if not stats["count"]:
        return "–"
    return f"{_f(stats['p50'], digits)} / {_f(stats['p99'], digits)} / {_f(stats['max'], digits)}"


def _accuracy(results: Mapping[str, Any]) -> list[str]:
    acc = results.get("accuracy")
    if not acc:
        return []
    rows = []
    tls = acc.get("tls")
    for lv in [*acc["levels"], *([tls] if tls else [])]:
        rows.append([
            lv["callers"] if lv is not tls else f"{lv['callers']} over wss://",
            lv["ttfb_error_ms"]["count"], _q(lv["ttfb_error_ms"]),
            f"{_f(lv['caller_to_agent_ms']['p50'], 2)} / {_f(lv['caller_to_agent_ms']['p99'], 2)}",
            f"{_f(lv['agent_to_caller_ms']['p50'], 2)} / {_f(lv['agent_to_caller_ms']['p99'], 2)}",
            lv["barge_in_error_ms"]["count"], _q(lv["barge_in_error_ms"]),
            f"{lv['matched_by_index']} / {lv['matched_by_time']} / {lv['unmatched']}",
        ])  # fmt: skip
    return [
        "## Accuracy against the agent's ground truth",
        "",
        "The capacity run, read twice: the callers' per-turn log (`TURN_LOG`) "
        "and the agent's ground truth (`--ground-truth`), both `time.monotonic_ns()` on one "
        "host, matched per connection id and turn. Error = harness − truth, where the truth "
        "is the agent's first reply frame written − last speech frame read (TTFB) and "
        "StopAudio written − first barge speech frame read (barge-in). The error is the "
        "loopback transit both ways plus how late each side stamps what it receives: the "
        "callers take the kernel's arrival stamp of each read (Linux), the agent "
        "stamps a read when its event loop makes it — the two halves are shown for TTFB. "
        "A turn counts in the step whose window holds the whole measurement — end of speech "
        "to the first reply frame read (barge-in: first barge speech frame to StopAudio "
        "read); one that straddles the window's end finished "
        "while the next step's callers were connecting, a load that is not its step's.",
        "",
        *_table(
            [
                "callers",
                "TTFB n",
                "TTFB error p50 / p99 / max ms",
                "caller→agent p50 / p99 ms",
                "agent→caller p50 / p99 ms",
                "barge-in n",
                "barge-in error p50 / p99 / max ms",
                "matched by turn / by time / unmatched",
            ],
            rows,
        ),
        *_tls_note(tls),
    ]


def _tls_note(tls: Mapping[str, Any] | None) -> list[str]:
    if not tls:
        return []
    step = tls["step"]
    return [
        "",
        f"The last row is a run of its own at {tls['callers']} callers over TLS: the agent "
        "serves wss:// with a certificate from a throw-away CA the callers trust "
        "(`WS_CA_BUNDLE`), so every frame is encrypted and every answer decrypted as with a "
        "production agent, and each TLS read is stamped with the kernel's arrival stamp of "
        "the record it decrypts. The worker used "
        f"{_f(step['cpu_percent'])} % of its CPU there (frame lateness p99 "
        f"{_f(step['lateness_ms']['p99'], 2)} ms, receive lag p99 "
        f"{_f(step['receive_lag_ms']['p99'])} ms; "
        f"{'holds' if step_holds(step) else 'beyond what the worker holds over TLS'}).",
        "",
    ]


def _cost(results: Mapping[str, Any]) -> list[str]:
    cost = results.get("cost")
    if not cost:
        return []
    return [
        "## CPU and memory per caller",
        "",
        f"- CPU: **{_f(cost['cpu_ms_per_caller_s'], 2)} ms of CPU per caller-second** "
        f"(slope of worker CPU over the holding steps; the line meets zero callers at "
        f"{_f(cost['cpu_fixed_percent'])} % of a core{_per_caller_by_step(cost)}).",
        *_kernel_share(results.get("capacity", {})),
        f"- Memory: **{_f(cost['rss_kb_per_caller'])} KB per caller** "
        f"({_f(cost['rss_mb_per_100_callers'], 2)} MB of RSS per 100 callers, slope over every "
        f"step); the worker starts at {_f(cost['rss_mb_start'])} MB with the audio cache "
        "loaded and pre-encoded once for all callers.",
        "",
    ]


def _per_caller_by_step(cost: Mapping[str, Any]) -> str:
    """What each step's callers cost apiece. Where the slope's line meets zero callers well
    above zero, these show it: a caller costs more under a light load (fewer callers share
    each wake-up of the event loop); an idle worker takes next to nothing."""
    steps = cost.get("per_step") or []
    if not steps:
        return ""
    each = ", ".join(f"{_f(s['cpu_ms_per_caller_s'], 2)} ms at {s['callers']}" for s in steps)
    return f"; each step's CPU per caller-second: {each} callers"


def _kernel_share(cap: Mapping[str, Any]) -> list[str]:
    """The system-time part of a caller's CPU at the capacity figure: what no change to the
    Python code can lift, and the ceiling it alone puts on callers per core."""
    held = cap.get("callers_per_core")
    step = next((s for s in cap.get("steps", []) if s.get("callers") == held), None)
    if not held or step is None or step.get("cpu_system_percent") is None:
        return []
    system, total = step["cpu_system_percent"], step["cpu_percent"]
    if system <= 0:
        return []
    total_ms, kernel_ms = cpu_ms_per_caller_s(total, held), cpu_ms_per_caller_s(system, held)
    return [
        f"- At the capacity figure ({held} callers) each caller took {_f(total_ms, 2)} ms of CPU "
        f"per second: **{_f(kernel_ms, 2)} ms in the kernel** (system time: the send, receive "
        f"and poll system calls; on loopback each send also runs the agent side's TCP receive) "
        f"and {_f(total_ms - kernel_ms, 2)} ms in user space (the interpreter, gevent, the "
        f"engine). System time "
        f"alone would fill a core at about {round(held * 100 / system, -1):,.0f} callers, "
        f"whatever the Python code costs."
    ]


def _scale_out(results: Mapping[str, Any]) -> list[str]:
    scale = results.get("scale_out")
    if not scale:
        return []
    if "skipped" in scale:
        return ["## Scale-out", "", f"Skipped: {scale['skipped']}.", ""]
    rows = []
    for config in scale["configs"]:
        for s in config["steps"]:
            late = s["lateness_ms"]
            rows.append([
                config["workers"], s["callers"], _f(s["cpu_percent_max"]),
                _f(s.get("agent_cpu_percent")),
                _f((s.get("receive_lag_ms") or {}).get("p99"), 1),
                _f(s["frame_rate_ratio"], 4),
                f"{_f(late['p50'], 2)} / {_f(late['p99'], 2)} / {_f(late['max'], 1)}",
                "holds" if step_holds(s) else "**fails**",
            ])  # fmt: skip
    held = ", ".join(f"{c['workers']} worker(s): {c['held']}" for c in scale["configs"])
    cpu = "; ".join(
        f"{c['per_worker']} callers per worker: {_f(c['one_worker'])} % alone, "
        f"{_f(c['two_workers'])} % with a second worker"
        for c in scale.get("worker_cpu_percent", [])
    )
    pairs = scale.get("worker_cpu_percent", [])
    cheaper = all(c["two_workers"] <= c["one_worker"] * 1.1 for c in pairs)
    verdict = (
        ""
        if scale.get("judged", True)
        else " Not judged against the target: with 2 CPUs the agent has no CPU of its own, so "
        "the second worker shares one with it and the verdicts above measure that contention "
        f"(receive lag from preemption), not how workers scale. Busiest worker's CPU — {cpu}"
        + (": a second worker does not make a caller dearer." if pairs and cheaper else ".")
    )
    return [
        "## Scale-out: 1 vs 2 workers",
        "",
        f"Workers pinned to CPUs {scale['configs'][-1]['worker_cpus']}, the agent "
        f"{scale['agent_cpus']}; each worker steps through {scale['per_worker_steps']} callers "
        "at the same time — fractions of the capacity figure, because one agent process (one "
        "core) must serve them all — and lateness is pooled over all frames of all workers. "
        "Workers share nothing, so the question is whether a second worker costs the first "
        "any fidelity; on a 2-CPU machine the agent has no CPU of its own here and competes "
        "with both workers.",
        "",
        f"**Largest total held — {held}; ratio {_f(scale['ratio'], 2)}×.**{verdict}",
        "",
        *_table(
            [
                "workers",
                "callers (total)",
                "busiest worker CPU %",
                "agent CPU %",
                "receive lag p99 ms",
                "realtime factor",
                "lateness p50 / p99 / max ms",
                "",
            ],
            rows,
        ),
    ]


def _agent(results: Mapping[str, Any]) -> list[str]:
    agent = results.get("agent")
    if not agent:
        return []
    if "skipped" in agent:
        return ["## Agent simulator capacity", "", f"Skipped: {agent['skipped']}.", ""]
    rows = [
        [s["calls"], _f(s["cpu_percent"]), _f(s["lateness_p50_ms"], 1), _f(s["lateness_p99_ms"], 1),
         _f(s["loop_lag_max_ms"], 1), _f(s["audio_ratio"], 3), s["dropped"],
         "holds" if s["holds"] else "**fails**"]
        for s in agent["steps"]
    ]  # fmt: skip
    return [
        "## Agent simulator capacity",
        "",
        f"`{agent['command']}` (`make bench-agent`): the simulator pinned to one CPU, a cheap "
        "raw-asyncio load client on another; every call is full duplex (caller frames in, "
        "real-time reply audio out), the callers' frames spread over the 20 ms grid. The "
        "callers stream comfort noise that is not flagged silent — what the harness sends "
        "while it listens — so the VAD's level gate runs on every frame. "
        f"Holds: {agent['criteria']}.",
        "",
        _agent_held(agent) + _agent_load_there(agent),
        "",
        *_table(
            [
                "calls",
                "agent CPU %",
                "lateness p50 ms",
                "p99 ms",
                "loop lag max ms",
                "audio received",
                "dropped",
                "",
            ],
            rows,
        ),
        *_agent_modes(agent.get("other_modes", {})),
    ]


def _agent_held(agent: Mapping[str, Any]) -> str:
    """The headline: the largest step held, or that even the smallest failed (not "0")."""
    if agent["max_calls_held_one_core"]:
        return f"**{agent['max_calls_held_one_core']} concurrent calls per core.**"
    lowest = min(agent["steps"], key=lambda s: s["calls"])
    return (
        f"**No step held**: the smallest, {lowest['calls']} calls, failed with the simulator "
        f"at {_f(lowest['cpu_percent'])} % of its core; give `make bench-agent` smaller steps "
        "(`--calls`) to find the figure on this machine."
    )


def _agent_load_there(agent: Mapping[str, Any]) -> str:
    """Where the held figure sits on the core: a figure held near 100 % is an edge, and a
    slower minute of a shared machine moves it."""
    held = [s for s in agent["steps"] if s["holds"]]
    if not held:
        return ""
    cpu = float(held[-1]["cpu_percent"])
    edge = " — the edge of the core, not headroom" if cpu >= 95.0 else ""
    return f" The simulator used {cpu:.1f} % of its core there{edge}."


_MODE_TEXT = {
    "unique": "comfort noise that never repeats (no decode is saved)",
    "none": "callers send nothing (agent → caller audio only)",
}


def _agent_modes(modes: Mapping[str, Any]) -> list[str]:
    if not modes:
        return []
    rows = []
    for mode, run in modes.items():
        held = [s for s in run["steps"] if s["holds"]]
        cpu = _f(held[-1]["cpu_percent"]) if held else "–"
        smallest = min(s["calls"] for s in run["steps"])
        calls = run["max_calls_held_one_core"] or f"none (smallest step {smallest})"
        rows.append([_MODE_TEXT.get(mode, mode), calls, cpu,
                     f"`{run['command']}`"])  # fmt: skip
    return [
        "The same with other caller audio:",
        "",
        *_table(["caller audio", "calls held per core", "agent CPU % there", "command"], rows),
    ]


def _cold(results: Mapping[str, Any]) -> list[str]:
    cold = results.get("cold_start")
    if not cold:
        return []
    plain = cold.get("without_pull", {})
    pull = cold.get("with_pull", {})
    pull_text = (
        f"Skipped: {pull['skipped']}."
        if "skipped" in pull
        else f"**{_f(pull.get('median_ms'), 0)} ms** median ({pull.get('store')}: pull "
        f"{pull.get('pull_ms')} ms, then start; runs {pull.get('runs_ms')} ms)."
    )
    return [
        "## Cold start",
        "",
        "From spawning `locust -f loadtest/locustfile.py --headless -u 1` to the send instant "
        "of its first caller frame (interpreter, Locust and gevent start-up, loading and "
        "pre-encoding the audio cache, the target probe, the WebSocket upgrade).",
        "",
        f"- Without an audio pull: **{_f(plain.get('median_ms'), 0)} ms** median "
        f"(runs {plain.get('runs_ms')} ms).",
        f"- With `voice-loadtest audio pull` first: {pull_text}",
        "",
    ]


def _profile(results: Mapping[str, Any]) -> list[str]:
    prof = results.get("profile")
    if not prof:
        return []
    if "skipped" in prof:
        return ["## Where a worker's CPU goes", "", f"Skipped: {prof['skipped']}.", ""]
    return [
        "## Where a worker's CPU goes",
        "",
        f"{prof['tool']} on the worker at {prof['callers']} callers: {prof['samples']} busy "
        f"samples (another {prof.get('idle_percent')} % of samples found it idle in "
        "`epoll_wait`), grouped by the innermost recognised frame.",
        "",
        *_table(["where", "% of busy samples"], prof["buckets"]),
        *_table(["top leaf frames", "% of busy samples"], prof["top_leaves"][:8]),
    ]


_RAW_OPEN, _RAW_CLOSE = "```json\n", "\n```"  # the page's raw results block


def recorded_results(text: str) -> Any:
    """The results a ``--json`` file holds, or those a page rendered here embeds in its raw
    results block (so the page alone can be rendered again). ``ValueError`` if neither."""
    if not text.lstrip().startswith("{") and _RAW_OPEN in text:
        text = text.split(_RAW_OPEN, 1)[1].split(_RAW_CLOSE, 1)[0]
    return json.loads(text)


def render_markdown(results: Mapping[str, Any]) -> str:
    """The whole ``docs/benchmarks.md``."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench` from the repository root); "
        "re-run it to refresh this page. Figures from a shared or virtualised machine vary "
        "from run to run — the machine and its load average are recorded below.",
        "",
        f"> {headline(results)}",
        "",
        *_machine(results),
        *_targets(results),
        *_capacity(results),
        *_accuracy(results),
        *_cost(results),
        *_scale_out(results),
        *_agent(results),
        *_cold(results),
        *_profile(results),
        *hotpath_lines(results),
        *master_lines(results),
        _LIMITS,
        "## Raw results",
        "",
        "<details><summary>JSON (also written by <code>--json FILE</code>)</summary>",
        "",
        _RAW_OPEN + json.dumps(results, indent=2) + _RAW_CLOSE,
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)
