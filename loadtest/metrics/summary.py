"""The run summary (core): one JSON-ready dict with stable keys, built from merged stats.

Keys (stable; other tools read them)::

    metrics.{ttfb_ms,barge_in_ms,greeting_ms,connect_ms,turn_ms,talk_over_ms}
           .{count,p50,p90,p95,p99,max,mean}
    rates.{connection_success,turn_success,barge_in_success}      ratios 0..1 (null: no data)
    counts.{calls,connect_attempts,connect_failures,turns,turns_ok,turns_cut,barge_attempts,
            after_run_time,stop_while_silent,frames_sent,frames_received,reconnects,
            worker_lost,failures:{error_name: n},
            <inbound anomaly>: n}    each name of voice_stats.INBOUND_ANOMALIES, 0 when none
    outage: null | {first_failure_at,last_failure_at,window_s,failed_attempts}
                     the span of failed connection attempts (UTC ISO instants)
    workers_lost: [{worker,lost_at,t_s,calls_in_flight}]   workers that went missing
    harness.{frame_lateness_ms.{p50,p99,max},receive_lag_ms.{p50,p99,max},
             realtime_factor,worker_cpu_max}
    slo.{verdict,exit_code,reasons,warnings,checks:[{name,threshold,actual,status}]}
    settings.{...}   run.{started_at,duration_s,users,spawn_rate,run_time_s,workers,target,
                         stopped_by, audio_cache: [sha256:...], scenarios: [name]}
    audio.{dir,engines,voices,files,sample_rates,digest[,others]}   the cache the callers played
    notes: [str]     how the run was counted, where a user could expect otherwise
    distributions.{ttfb_ms,barge_in_ms,greeting_ms,talk_over_ms}: [[bucket_start_ms, count]]
    distribution_bucket_ms: 1    the width of those buckets (absent in older summaries: 10)
    scenarios.{<name>}.{turns,turns_ok,turn_success,ttfb_ms,barge_in_ms,turn_ms}
                     per scenario played; the latencies as in metrics
    timeline: [{t_s, users, ttfb_ms.{count,p50,p95,p99}, barge_in_ms.{...}, connection_success,
                turn_success, barge_in_success, turns, calls, failures:{error_name: n},
                frame_lateness_ms.{p50,p99}, worker_cpu_max}]
                                                 one entry per window; counts are per window

Percentiles come from histograms merged across workers (all samples pooled), never from an
average of per-worker percentiles. Answers that arrive after the run time, while the callers
finish their turns, are counted like any other measurement everywhere; ``after_run_time`` says
how many TTFBs those were (already included above). ``turns_cut``: turns the end of the
stop grace cut (reported in the per-turn log, neither successes nor failures).
``stop_while_silent``: the agent's stop signals (StopAudio, clear) that arrived while it was
quiet — many frameworks send one at every start of the caller's speech; never a barge-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from loadtest.metrics.histogram import Histogram
from loadtest.metrics.slo import DEFAULT_SLO, SloConfig, evaluate
from loadtest.metrics.voice_stats import BY_SCENARIO, HISTOGRAMS, INBOUND_ANOMALIES, VoiceStats

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
    all_turns, all_ok = stats.per_scenario("turns"), stats.per_scenario("turns_ok")
    names = {name for _, name in stats.by_scenario} | set(all_turns)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        turns, turns_ok = all_turns.get(name, 0), all_ok.get(name, 0)
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
    c = window.total
    lateness = window.histograms["frame_lateness_ms"].summary()
    return {
        "t_s": round(t_s, 1),
        "users": users,
        "ttfb_ms": _brief(window.histograms["ttfb_ms"]),
        "barge_in_ms": _brief(window.histograms["barge_in_ms"]),
        "connection_success": _ratio(c("calls_connected"), c("connect_attempts")),
        "turn_success": _ratio(c("turns_ok"), c("turns")),
        "barge_in_success": _ratio(c("barge_ok"), c("barge_attempts")),
        "turns": c("turns"),
        "calls": c("calls"),
        "failures": dict(sorted(window.errors.items())),
        "frame_lateness_ms": {"p50": _r(lateness.p50, 3), "p99": _r(lateness.p99, 3)},
        "worker_cpu_max": round(cpu, 1),
    }


def _utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")


def _outage(stats: VoiceStats) -> dict[str, Any] | None:
    """When connection attempts failed: the first and last failure and how many failed."""
    failed = stats.total("connect_attempts") - stats.total("calls_connected")
    span = stats.spans.get("connect_failure")
    if span is None or failed <= 0:
        return None
    first_s, last_s = span
    return {
        "first_failure_at": _utc(first_s),
        "last_failure_at": _utc(last_s),
        "window_s": round(last_s - first_s, 1),
        "failed_attempts": failed,
    }


def build_summary(
    stats: VoiceStats,
    *,
    slo: SloConfig = DEFAULT_SLO,
    settings: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
    timeline: list[dict[str, Any]] | None = None,
    workers_lost: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Summarise merged ``stats`` and judge them against ``slo``.

    ``workers_lost``: one entry per worker that went missing during the run (``worker``,
    ``lost_at``, ``t_s``, ``calls_in_flight``); their calls count as ``worker_lost``.
    """
    c = stats.total
    lost = [dict(entry) for entry in workers_lost]
    metrics = {
        name: _rounded(stats.histograms[name].summary().as_dict()) for name in SUMMARY_METRICS
    }
    lateness = stats.histograms["frame_lateness_ms"].summary()
    lag = stats.histograms["receive_lag_ms"].summary()
    due_us, actual_us = c("stream_due_us"), c("stream_actual_us")
    summary: dict[str, Any] = {
        "metrics": metrics,
        "rates": {
            "connection_success": _ratio(c("calls_connected"), c("connect_attempts")),
            "turn_success": _ratio(c("turns_ok"), c("turns")),
            "barge_in_success": _ratio(c("barge_ok"), c("barge_attempts")),
        },
        "counts": {
            "calls": c("calls"),
            "connect_attempts": c("connect_attempts"),
            "connect_failures": c("connect_attempts") - c("calls_connected"),
            "turns": c("turns"),
            "turns_ok": c("turns_ok"),
            "turns_cut": c("turns_cut"),
            "barge_attempts": c("barge_attempts"),
            "after_run_time": c("after_run_time"),
            "stop_while_silent": c("stop_while_silent"),
            "frames_sent": c("frames_sent"),
            "frames_received": c("frames_received"),
            "reconnects": c("reconnects"),
            "worker_lost": sum(int(entry.get("calls_in_flight") or 0) for entry in lost),
            "failures": dict(sorted(stats.errors.items())),
            **{name: c(name) for name in INBOUND_ANOMALIES},
        },
        "outage": _outage(stats),
        "workers_lost": lost,
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


def _clock(iso: str) -> str:
    """``HH:MM:SS.mmm`` of an ISO instant (the date is in the JSON)."""
    return iso.partition("T")[2][:12] or iso


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
    counts = summary["counts"]
    late, cut = counts.get("after_run_time", 0), counts.get("turns_cut", 0)
    if late or cut:
        lines.append(
            f"after the run time: {late} TTFB(s) measured while callers finished their turns "
            f"(counted above); {cut} turn(s) cut by the stop timeout (not judged)"
        )
    silent_stops = counts.get("stop_while_silent", 0)
    if silent_stops:
        lines.append(f"stop signals while the agent was silent: {silent_stops} (not barge-ins)")
    failures = counts["failures"]
    if failures:
        lines.append("failures: " + ", ".join(f"{k}={v}" for k, v in failures.items()))
    outage = summary.get("outage")
    if outage:
        lines.append(
            f"connection failures: {outage['failed_attempts']} of {counts['connect_attempts']} "
            f"attempts failed, from {_clock(outage['first_failure_at'])} to "
            f"{_clock(outage['last_failure_at'])} UTC ({outage['window_s']:.1f} s)"
        )
    anomalies = [f"{name}={counts[name]}" for name in INBOUND_ANOMALIES if counts.get(name)]
    if anomalies:
        lines.append("agent anomalies: " + ", ".join(anomalies))
    for entry in summary.get("workers_lost") or ():
        lines.append(
            f"worker lost: {entry['worker']} at {_clock(entry['lost_at'])} UTC "
            f"({entry['calls_in_flight']} calls in flight)"
        )
    h = summary["harness"]
    lines.append(
        f"harness: frame lateness p50 {_fmt(h['frame_lateness_ms']['p50'], ' ms')}, "
        f"p99 {_fmt(h['frame_lateness_ms']['p99'], ' ms')}; receive lag p99 "
        f"{_fmt(h['receive_lag_ms']['p99'], ' ms')}; realtime factor "
        f"{_fmt(h['realtime_factor'])}; worker CPU max {_fmt(h['worker_cpu_max'], ' %')}"
    )
    audio = summary.get("audio")
    if audio:
        lines.append(
            f"audio: {audio['dir']}: {', '.join(audio['engines'])} ({', '.join(audio['voices'])}),"
            f" {audio['files']} files, {audio['digest'][:19]}…"
        )
        for other in audio.get("others", ()):
            lines.append(f"audio: a worker played another cache: {other['dir']} {other['digest']}")
    slo = summary["slo"]
    lines.append("")
    lines.append(f"{'SLO check':<22}{'threshold':<34}{'actual':>10}  status")
    for check in slo["checks"]:
        actual = check["actual"]
        shown = "-" if actual is None else (f"{actual:.3f}" if actual <= 1 else f"{actual:.0f}")
        lines.append(f"{check['name']:<22}{check['threshold']:<34}{shown:>10}  {check['status']}")
    for note in summary.get("notes", ()):
        lines.append(f"note: {note}")
    for reason in slo["reasons"]:
        lines.append(f"INVALID RUN: {reason}")
    for warning in slo.get("warnings") or ():
        lines.append(f"WARNING: {warning}")
    lines.append(f"verdict: {slo['verdict'].upper()} (exit code {slo['exit_code']})")
    return "\n".join(lines)
