"""The run summary (core): one JSON-ready dict with stable keys, built from merged stats.

Keys (stable; other tools read them)::

    metrics.{ttfb_ms,barge_in_ms,greeting_ms,connect_ms,turn_ms,talk_over_ms}
           .{count,p50,p90,p95,p99,max,mean}
    rates.{connection_success,turn_success,barge_in_success}      ratios 0..1 (null: no data)
    counts.{calls,connect_attempts,turns,turns_ok,barge_attempts,frames_sent,
            frames_received,reconnects,failures:{error_name: n}}
    harness.{frame_lateness_ms.{p50,p99,max},receive_lag_ms.{p50,p99,max},
             realtime_factor,worker_cpu_max}
    slo.{verdict,exit_code,reasons,checks:[{name,threshold,actual,status}]}
    settings.{...}   run.{started_at,duration_s,users,workers,target}
    distributions.{ttfb_ms,barge_in_ms,greeting_ms,talk_over_ms}: [[bucket_start_ms, count]]
    distribution_bucket_ms: 1    the width of those buckets (absent in older summaries: 10)
    scenarios.{<name>}.{turns,turns_ok,turn_success,ttfb_ms,barge_in_ms,turn_ms}
                     per scenario played; the latencies as in metrics
    timeline: [{t_s, users, ttfb_ms.{count,p50,p95,p99}, barge_in_ms.{...}, connection_success,
                turn_success, barge_in_success, turns, calls, failures:{error_name: n},
                frame_lateness_ms.{p50,p99}, worker_cpu_max}]
                                                 one entry per window; counts are per window

Percentiles come from histograms merged across workers (all samples pooled), never from an
average of per-worker percentiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadtest.metrics.histogram import Histogram
from loadtest.metrics.slo import DEFAULT_SLO, SloConfig, evaluate
from loadtest.metrics.voice_stats import BY_SCENARIO, HISTOGRAMS, VoiceStats

__all__ = ["SUMMARY_METRICS", "build_summary", "format_table", "scenario_stats", "timeline_entry"]

SUMMARY_METRICS = ("ttfb_ms", "barge_in_ms", "greeting_ms", "connect_ms", "turn_ms", "talk_over_ms")


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _rounded(stats: Mapping[str, Any], digits: int = 1) -> dict[str, Any]:
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in stats.items()}


_DISTRIBUTIONS = ("ttfb_ms", "barge_in_ms", "greeting_ms", "talk_over_ms")


def _distribution(histogram: Histogram) -> list[list[float]]:
    """The histogram's own buckets ``[[start_ms, count], ...]`` (only non-empty ones), so a
    plot can choose its bar width from the data: 1 ms bars for a 0–2 ms spread, 50 ms bars
    for a 0–3 s one."""
    return [
        [round(key * histogram.resolution, 6), int(n)]
        for key, n in histogram.serialize()["buckets"]  # type: ignore[attr-defined]
    ]


def scenario_stats(stats: VoiceStats) -> dict[str, dict[str, Any]]:
    """Per scenario played: turns, turn success and the latencies kept per scenario."""
    names = {name for _, name in stats.by_scenario}
    names |= {key.partition("@")[2] for key in stats.counters if key.startswith("turns@")}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        turns = stats.counters.get(f"turns@{name}", 0)
        turns_ok = stats.counters.get(f"turns_ok@{name}", 0)
        entry: dict[str, Any] = {
            "turns": turns,
            "turns_ok": turns_ok,
            "turn_success": _ratio(turns_ok, turns),
        }
        for metric in sorted(BY_SCENARIO):
            histogram = stats.by_scenario.get((metric, name)) or Histogram(HISTOGRAMS[metric][0])
            entry[metric] = _rounded(histogram.summary().as_dict())
        out[name] = entry
    return out


def _brief(histogram: Histogram) -> dict[str, Any]:
    p = histogram.summary()
    return {"count": p.count, "p50": _r(p.p50, 1), "p95": _r(p.p95, 1), "p99": _r(p.p99, 1)}


def timeline_entry(window: VoiceStats, *, t_s: float, users: int, cpu: float) -> dict[str, Any]:
    """One point of the run's timeline from the stats of one window (counts are per window)."""
    c = window.counters
    lateness = window.histograms["frame_lateness_ms"].summary()
    return {
        "t_s": round(t_s, 1),
        "users": users,
        "ttfb_ms": _brief(window.histograms["ttfb_ms"]),
        "barge_in_ms": _brief(window.histograms["barge_in_ms"]),
        "connection_success": _ratio(c.get("calls_connected", 0), c.get("connect_attempts", 0)),
        "turn_success": _ratio(c.get("turns_ok", 0), c.get("turns", 0)),
        "barge_in_success": _ratio(c.get("barge_ok", 0), c.get("barge_attempts", 0)),
        "turns": c.get("turns", 0),
        "calls": c.get("calls", 0),
        "failures": dict(sorted(window.errors.items())),
        "frame_lateness_ms": {"p50": _r(lateness.p50, 3), "p99": _r(lateness.p99, 3)},
        "worker_cpu_max": round(cpu, 1),
    }


def build_summary(
    stats: VoiceStats,
    *,
    slo: SloConfig = DEFAULT_SLO,
    settings: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
    timeline: list[dict[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Summarise merged ``stats`` and judge them against ``slo``."""
    c = stats.counters
    metrics = {
        name: _rounded(stats.histograms[name].summary().as_dict()) for name in SUMMARY_METRICS
    }
    lateness = stats.histograms["frame_lateness_ms"].summary()
    lag = stats.histograms["receive_lag_ms"].summary()
    due_us, actual_us = c.get("stream_due_us", 0), c.get("stream_actual_us", 0)
    summary: dict[str, Any] = {
        "metrics": metrics,
        "rates": {
            "connection_success": _ratio(c.get("calls_connected", 0), c.get("connect_attempts", 0)),
            "turn_success": _ratio(c.get("turns_ok", 0), c.get("turns", 0)),
            "barge_in_success": _ratio(c.get("barge_ok", 0), c.get("barge_attempts", 0)),
        },
        "counts": {
            "calls": c.get("calls", 0),
            "connect_attempts": c.get("connect_attempts", 0),
            "turns": c.get("turns", 0),
            "turns_ok": c.get("turns_ok", 0),
            "barge_attempts": c.get("barge_attempts", 0),
            "frames_sent": c.get("frames_sent", 0),
            "frames_received": c.get("frames_received", 0),
            "reconnects": c.get("reconnects", 0),
            "failures": dict(sorted(stats.errors.items())),
        },
        "harness": {
            "frame_lateness_ms": {
                "p50": _r(lateness.p50, 3),
                "p99": _r(lateness.p99, 3),
                "max": _r(lateness.max, 3),
            },
            "receive_lag_ms": {"p50": _r(lag.p50, 3), "p99": _r(lag.p99, 3), "max": _r(lag.max, 3)},
            # Realised audio time / wall time while streaming: 1.0 is exactly real time.
            "realtime_factor": None if actual_us == 0 else round(due_us / actual_us, 4),
            "worker_cpu_max": round(stats.cpu_max, 1),
        },
        "settings": dict(settings or {}),
        "run": dict(run or {}),
        "distributions": {name: _distribution(stats.histograms[name]) for name in _DISTRIBUTIONS},
        "distribution_bucket_ms": stats.histograms[_DISTRIBUTIONS[0]].resolution,
        "scenarios": scenario_stats(stats),
        "timeline": list(timeline or []),
        **dict(extra or {}),
    }
    summary["slo"] = evaluate(summary, slo).as_dict()
    return summary


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value}{unit}"


def format_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table of the summary and the SLO verdict, for the terminal."""
    lines = [f"{'metric':<14}{'count':>8}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}{'max':>10}"]
    for name in SUMMARY_METRICS:
        m = summary["metrics"][name]
        lines.append(
            f"{name:<14}{m['count']:>8}"
            + "".join(f"{_fmt(m[k]):>10}" for k in ("p50", "p90", "p95", "p99", "max"))
        )
    rates = summary["rates"]
    lines.append("")
    lines.append(
        "rates: "
        + " | ".join(
            f"{k.replace('_', ' ')}: {'-' if v is None else f'{v * 100:.1f} %'}"
            for k, v in rates.items()
        )
    )
    failures = summary["counts"]["failures"]
    if failures:
        lines.append("failures: " + ", ".join(f"{k}={v}" for k, v in failures.items()))
    h = summary["harness"]
    lines.append(
        f"harness: frame lateness p50 {_fmt(h['frame_lateness_ms']['p50'], ' ms')}, "
        f"p99 {_fmt(h['frame_lateness_ms']['p99'], ' ms')}; receive lag p99 "
        f"{_fmt(h['receive_lag_ms']['p99'], ' ms')}; realtime factor "
        f"{_fmt(h['realtime_factor'])}; worker CPU max {_fmt(h['worker_cpu_max'], ' %')}"
    )
    slo = summary["slo"]
    lines.append("")
    lines.append(f"{'SLO check':<22}{'threshold':<34}{'actual':>10}  status")
    for check in slo["checks"]:
        actual = check["actual"]
        shown = "-" if actual is None else (f"{actual:.3f}" if actual <= 1 else f"{actual:.0f}")
        lines.append(f"{check['name']:<22}{check['threshold']:<34}{shown:>10}  {check['status']}")
    for reason in slo["reasons"]:
        lines.append(f"INVALID RUN: {reason}")
    lines.append(f"verdict: {slo['verdict'].upper()} (exit code {slo['exit_code']})")
    return "\n".join(lines)
