"""The benchmark page's master-scale and hot-path sections (core: pure, dict in, markdown out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.master import MAX_MASTER_CPU_PERCENT, MAX_ROUND_TRIP_MS

__all__ = ["hotpath_lines", "master_lines"]


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def master_lines(results: Mapping[str, Any]) -> list[str]:
    """``## Master scale`` (empty when the section did not run)."""
    master = results.get("master")
    if not master:
        return []
    rows = []
    for s in master["steps"]:
        if "error" in s:
            rows.append([_f(s["workers"]), _f(s["callers"]), "–", "–", "–", "–", "–", "–",
                         f"**fails**: {s['error']}"])  # fmt: skip
            continue
        trip, scrape = s["heartbeat_round_trip_ms"], s["scrape_ms"]
        exact = "exact" if s["summary_exact"] else "**differs**: " + "; ".join(s["mismatches"])
        rows.append([
            _f(s["workers"]), _f(s["callers"]), _f(s["master_cpu_percent"]),
            f"{_f(trip['p50'])} / {_f(trip['p99'])} / {_f(trip['max'])}",
            f"{_f(scrape['p50'])} / {_f(scrape['max'])}", _f(round(s["scrape_bytes"] / 1024, 1)),
            _f(s["drain_s"], 2), exact, "carried" if s["carried"] else "**fails**",
        ])  # fmt: skip
    cpus = master["master_cpus"]
    return [
        "## Master scale (simulated workers)",
        "",
        "One real Locust master (`locust -f loadtest/locustfile.py --master --headless`, the "
        f"harness loaded, `/metrics` on; CPU {cpus}) and one process of simulated workers "
        "(`python -m bench.mastersim`) that speak Locust's own worker protocol — zmq "
        "and Locust's msgpack messages: `client_ready`, `spawning`/`spawning_complete`, a "
        "heartbeat every second and a stats report every 3 s, spread over the interval — each "
        f"reporting for {_f(master['callers_per_worker'])} callers what a worker ships: "
        "Locust's request stats for the voice samples and the harness's histograms, "
        f"per-scenario rows and counters. Workers report for {master['report_window_s']:g} s; "
        "the master's CPU is measured over that window and `/metrics` is scraped every second. "
        "*Heartbeat round trip*: the master answers a heartbeat after the messages queued "
        "before it, so this is how far behind its message loop is. *Drain*: after the last "
        "report was sent, until `/metrics` counts every frame reported. *Summary*: the "
        "counts, failures and TTFB samples of the summary the master writes at the end, "
        f"against what the workers sent. Carried: summary exact, round trip p99 ≤ "
        f"{MAX_ROUND_TRIP_MS:g} ms, master CPU ≤ {MAX_MASTER_CPU_PERCENT:g} %.",
        "",
        f"**One master carried {_f(master['max_workers'])} workers and "
        f"{_f(master['max_callers'])} callers** (the largest step run that held).",
        "",
        *_table(
            [
                "workers",
                "callers",
                "master CPU %",
                "heartbeat round trip p50 / p99 / max ms",
                "scrape p50 / max ms",
                "/metrics KB",
                "drain s",
                "summary",
                "",
            ],
            rows,
        ),
    ]


def hotpath_lines(results: Mapping[str, Any]) -> list[str]:
    """``## Caller hot path: instructions per frame`` (empty when it did not run)."""
    hot = results.get("hotpath")
    if not hot:
        return []
    if "skipped" in hot:
        return ["## Caller hot path: instructions per frame", "", f"Skipped: {hot['skipped']}.", ""]
    return [
        "## Caller hot path: instructions per frame",
        "",
        f"`python -m bench.hotpath --callers {hot['callers']} --seconds "
        f"{hot['seconds']:g} --callgrind`: {hot['callers']} real calls (the Locust plugin as "
        "sink, the frame scheduler, the transport on loopback TCP) against an in-process peer "
        "that answers every turn, on a virtual clock, so the work is the same on any machine "
        "at any load. Counted by valgrind's callgrind: the instructions of a run of "
        f"{hot['seconds']:g} s minus one of half that, per caller frame sent (receiving the "
        "answers and the peer's own work included). Compare runs on the same Python build.",
        "",
        f"**{_f(hot['instructions_per_frame'])} instructions per caller frame** "
        f"({_f(hot['frames'])} frames, {_f(hot['received'])} agent messages received).",
        "",
    ]
