"""The HTML run report: one self-contained page rendered from the run-summary dict.

:func:`render_report` is pure (summary in, HTML text out). The page needs no network to view:
CSS is inline, plots are inline SVG drawn by :mod:`loadtest.metrics.svg`, there is no script
and nothing is loaded from elsewhere. Every text value from the summary is escaped.

Sections, in order (each degrades to a short note when its data is missing): header (target,
start, duration, users, workers, verdict badge); SLO checks, invalid-run reasons, warnings, the
summary's notes (how the run was counted) and how the run ended (a signal); the comparison with
a baseline run when the summary has one (``run --baseline``); latency percentiles and run
totals; distributions of TTFB and barge-in (greeting, talk-over when present); TTFB and barge-
in p50/p95/p99 over time with SLO targets as dashed lines; success rates and call/turn counts
over time; harness health; failures by error name, the agent's anomalies, the connection outage
and lost workers; the audio cache the callers played and the settings.

Plot ids (stable, tests and tools look for them): ``plot-<metric>-distribution`` (``ttfb``,
``barge-in``, ``greeting``, ``talk-over``), ``plot-<metric>-percentiles-over-time`` (``ttfb``,
``barge-in``; both inside ``<div id="plot-percentiles-over-time">``),
``plot-success-over-time``, ``plot-counts-over-time``, ``plot-frame-lateness-over-time``,
``plot-worker-cpu-over-time``, ``plot-failures``.

The summary keys are those of :mod:`loadtest.metrics.summary` plus two optional ones:
``distributions.<metric>_ms`` (``[[bucket_start_ms, count], …]``, 1 ms buckets) and
``timeline`` (one entry per ~5 s window); :mod:`loadtest.metrics.report_plots` documents both.
:mod:`loadtest.metrics.report_cli` reads a summary file and writes the page (edge).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loadtest import __version__
from loadtest.metrics import report_plots as plots
from loadtest.metrics.compare_report import baseline_section
from loadtest.metrics.html import (
    CSS,
    STATUSES,
    badge,
    duration,
    esc,
    fmt_int,
    fmt_ms,
    fmt_pct,
    note,
    plain,
    table,
    when,
    with_unit,
)
from loadtest.metrics.report_plots import as_map, as_number
from loadtest.metrics.voice_stats import INBOUND_ANOMALIES

__all__ = [
    "failures_section",
    "harness_section",
    "numbers_section",
    "plot_section",
    "render_report",
    "slo_section",
]

_METRIC_NAMES = {
    "ttfb_ms": "TTFB",
    "barge_in_ms": "Barge-in",
    "greeting_ms": "Greeting",
    "connect_ms": "Connect",
    "turn_ms": "Turn duration",
    "talk_over_ms": "Talk-over after barge-in",
}
_RATE_NAMES = {
    "connection_success": "Connection success",
    "turn_success": "Turn success",
    "barge_in_success": "Barge-in success",
}
_COUNT_NAMES = {
    "calls": "Calls",
    "connect_attempts": "Connect attempts",
    "connect_failures": "Connect failures",
    "turns": "Turns",
    "turns_ok": "Turns OK",
    "turns_cut": "Turns cut by the stop timeout",
    "barge_attempts": "Barge-in attempts",
    "after_run_time": "TTFBs after the run time",
    "stop_while_silent": "Stop signals while silent",
    "frames_sent": "Frames sent",
    "frames_received": "Frames received",
    "reconnects": "Reconnects",
    "worker_lost": "Calls lost with workers",
}
_LATENCY_CHECK = re.compile(r"^[a-z_]+_(?:p\d+|max)_ms$")


def _header(summary: Mapping[str, Any]) -> str:
    run, slo = as_map(summary.get("run")), as_map(summary.get("slo"))
    metrics, rates = as_map(summary.get("metrics")), as_map(summary.get("rates"))
    facts = [
        ("Target", esc(run.get("target") or "–")),
        ("Started", esc(when(run.get("started_at")))),
        ("Duration", esc(duration(run.get("duration_s")))),
        ("Users", esc(fmt_int(run.get("users")))),
        ("Workers", esc(fmt_int(run.get("workers")))),
    ]
    if run.get("role"):
        facts.append(("Mode", esc(run["role"])))
    kpis = [
        (with_unit(fmt_ms(as_map(metrics.get("ttfb_ms")).get("p95")), " ms"), "TTFB p95"),
        (with_unit(fmt_ms(as_map(metrics.get("barge_in_ms")).get("p95")), " ms"), "barge-in p95"),
        (fmt_pct(rates.get("turn_success")), "turn success"),
        (fmt_int(as_map(summary.get("counts")).get("calls")), "calls"),
    ]
    return (
        '<header id="section-header"><div><h1>Voice load test report</h1><dl>'
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        + '</dl></div><div class="side">'
        + badge(str(slo.get("verdict") or ""), slo.get("exit_code"))
        + '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in kpis)
        + "</div></div></header>"
    )


def slo_section(summary: Mapping[str, Any]) -> str:
    slo = as_map(summary.get("slo"))
    out = ['<section id="section-slo"><h2>SLO checks</h2>']
    reasons = [r for r in slo.get("reasons") or () if isinstance(r, str)]
    if reasons:
        out.append('<div id="invalid-reasons" class="reasons"><b>Invalid run</b> — this run')
        out.append(" cannot be judged:<ul>" + "".join(f"<li>{esc(r)}</li>" for r in reasons))
        out.append("</ul></div>")
    warnings = [w for w in slo.get("warnings") or () if isinstance(w, str)]
    if warnings:
        out.append('<div id="slo-warnings" class="reasons"><b>Warning</b><ul>')
        out.append("".join(f"<li>{esc(w)}</li>" for w in warnings) + "</ul></div>")
    notes = [n for n in summary.get("notes") or () if isinstance(n, str)]
    if notes:  # how the run was counted where a reader could expect otherwise
        out.append('<div id="run-notes" class="reasons"><b>Note</b><ul>')
        out.append("".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul></div>")
    stopped = as_map(summary.get("run")).get("stopped_by")
    if stopped:
        out.append(
            f'<div id="stopped-by" class="reasons"><b>Stopped by signal</b> ({esc(stopped)}): '
            "the figures cover the run until then.</div>"
        )
    checks = [as_map(c) for c in slo.get("checks") or ()]
    if not checks:
        out.append(note("no SLO checks in this summary"))
    else:
        rows = []
        for check in checks:
            name, status = str(check.get("name", "?")), str(check.get("status", "no_data"))
            actual = check.get("actual")
            if _LATENCY_CHECK.match(name):
                shown = with_unit(fmt_ms(actual), " ms")
            elif 0 <= (as_number(actual) or 0) <= 1:  # the rate checks: ratios shown as %
                shown = fmt_pct(actual)
            else:
                shown = plain(actual)
            css = status if status in STATUSES else "no_data"
            rows.append(
                (
                    esc(name),
                    esc(check.get("threshold", "–")),
                    esc(shown),
                    f'<span class="status {css}">{esc(status.replace("_", " "))}</span>',
                )
            )
        out.append(
            table(
                ("check", "threshold", "actual", "status"), rows, table_id="slo-table", text_cols=2
            )
        )
    out.append("</section>")
    return "".join(out)


def numbers_section(summary: Mapping[str, Any]) -> str:
    metrics = as_map(summary.get("metrics"))
    names = [n for n in _METRIC_NAMES if n in metrics] + sorted(set(metrics) - set(_METRIC_NAMES))
    out = ['<section id="section-latency"><h2>Latency and totals</h2><div class="tables"><div>']
    if names:
        rows = []
        for name in names:
            stats = as_map(metrics[name])
            cells = [fmt_ms(stats.get(k)) for k in ("p50", "p90", "p95", "p99", "max", "mean")]
            rows.append((esc(_METRIC_NAMES.get(name, name)), fmt_int(stats.get("count")), *cells))
        out.append(
            table(
                ("metric (ms)", "count", "p50", "p90", "p95", "p99", "max", "mean"),
                rows,
                table_id="latency-table",
            )
        )
    else:
        out.append(note("no latency metrics in this summary"))
    counts, rates = as_map(summary.get("counts")), as_map(summary.get("rates"))
    totals = [(esc(label), fmt_int(counts.get(key))) for key, label in _COUNT_NAMES.items()]
    totals += [(esc(label), fmt_pct(rates.get(key))) for key, label in _RATE_NAMES.items()]
    out.append("</div><div>")
    out.append(table(("run totals", "value"), totals, table_id="totals-table"))
    out.append("</div></div></section>")
    return "".join(out)


def harness_section(summary: Mapping[str, Any]) -> str:
    harness = as_map(summary.get("harness"))
    lateness, lag = as_map(harness.get("frame_lateness_ms")), as_map(harness.get("receive_lag_ms"))
    rows = [
        ("Frame lateness (ms)", *(fmt_ms(lateness.get(k)) for k in ("p50", "p99", "max"))),
        ("Receive-loop lag (ms)", *(fmt_ms(lag.get(k)) for k in ("p50", "p99", "max"))),
    ]
    cpu = as_number(harness.get("worker_cpu_max"))
    facts = (
        f"<p>Realtime factor (audio time ÷ wall time while streaming; 1.0 is exact): "
        f"<b>{esc(plain(harness.get('realtime_factor')))}</b> · worker CPU max: "
        f"<b>{esc('–' if cpu is None else f'{cpu:.0f} %')}</b></p>"
    )
    return (
        '<section id="section-harness"><h2>Harness health</h2>'
        + facts
        + table(("", "p50", "p99", "max"), rows, table_id="harness-table")
        + '<div class="grid">'
        + "".join(plots.harness_plots(summary))
        + "</div></section>"
    )


def failures_section(summary: Mapping[str, Any]) -> str:
    body = [plots.failures_plot(summary) or note("no failures recorded")]
    counts = as_map(summary.get("counts"))
    rows = [
        (esc(name), fmt_int(counts.get(name)), esc(doc)) for name, doc in INBOUND_ANOMALIES.items()
    ]
    body.append("<h3>What the agent did wrong</h3>")
    body.append(
        table(("anomaly", "count", "meaning"), rows, table_id="anomalies-table", text_cols=1)
    )
    outage = as_map(summary.get("outage"))
    if outage:
        body.append(
            '<p id="outage"><b>Connection failures</b>: '
            f"{esc(fmt_int(outage.get('failed_attempts')))} failed attempts from "
            f"{esc(when(outage.get('first_failure_at')))} to "
            f"{esc(when(outage.get('last_failure_at')))} "
            f"({esc(duration(outage.get('window_s')))}).</p>"
        )
    lost = [as_map(entry) for entry in summary.get("workers_lost") or ()]
    if lost:
        lost_rows = [
            (
                esc(entry.get("worker", "?")),
                esc(when(entry.get("lost_at"))),
                esc(duration(entry.get("t_s"))),
                fmt_int(entry.get("calls_in_flight")),
            )
            for entry in lost
        ]
        body.append("<h3>Workers lost</h3>")
        body.append(
            table(
                ("worker", "lost at", "into the run", "calls in flight"),
                lost_rows,
                table_id="workers-lost-table",
                text_cols=3,
            )
        )
    return (
        '<section id="section-failures"><h2>Failures by error name</h2>'
        + "".join(body)
        + "</section>"
    )


def _audio_table(summary: Mapping[str, Any]) -> str:
    """The audio cache the callers played (and any other one a worker played instead)."""
    audio = as_map(summary.get("audio"))
    if not audio:
        return ""

    def listed(key: str) -> str:
        value = audio.get(key)
        return ", ".join(map(str, value)) if isinstance(value, list) else plain(value)

    rows = [
        ("folder", esc(plain(audio.get("dir")))),
        ("engines", esc(listed("engines"))),
        ("voices", esc(listed("voices"))),
        ("files", esc(fmt_int(audio.get("files")))),
        ("sample rates (Hz)", esc(listed("sample_rates"))),
        ("digest", esc(plain(audio.get("digest")))),
    ]
    for other in audio.get("others") or ():
        other = as_map(other)
        rows.append(
            (
                "a worker played another cache",
                esc(f"{plain(other.get('dir'))} {plain(other.get('digest'))}"),
            )
        )
    return "<h3>Audio played</h3>" + table(
        ("audio cache", ""), rows, table_id="audio-table", text_cols=2
    )


def _settings_section(summary: Mapping[str, Any]) -> str:
    settings = as_map(summary.get("settings"))
    if not settings:
        body = note("no settings in this summary")
    else:
        rows = [(esc(k), esc(plain(settings[k]))) for k in sorted(settings, key=str)]
        body = table(("setting", "value"), rows, table_id="settings-table", text_cols=2)
    audio = _audio_table(summary)
    return f'<section id="section-settings"><h2>Settings</h2>{audio}{body}</section>'


def plot_section(section_id: str, title: str, figures: Sequence[str]) -> str:
    return (
        f'<section id="{section_id}"><h2>{esc(title)}</h2><div class="grid">'
        + "".join(figures)
        + "</div></section>"
    )


_SECTIONS: tuple[Callable[[Mapping[str, Any]], str], ...] = (
    _header,
    slo_section,
    baseline_section,
    numbers_section,
    lambda s: plot_section("section-distributions", "Distributions", plots.distributions(s)),
    lambda s: plot_section(
        "section-percentiles", "Percentiles over time", [plots.percentiles_over_time(s)]
    ),
    lambda s: plot_section(
        "section-success", "Success rates and throughput over time", plots.success_plots(s)
    ),
    harness_section,
    failures_section,
    _settings_section,
)


def render_report(summary: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (UTF-8 text), from a run-summary dict.

    Pure: no files, no clock, no network. Missing or malformed parts of ``summary`` render
    as short notes, never as an exception.
    """
    run = as_map(summary.get("run"))
    title = "voice-loadtest report"
    if run.get("target"):
        title += f" — {run['target']}"
    body = "".join(section(summary) for section in _SECTIONS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>{body}"
        f"<footer>generated by voice-loadtest {esc(__version__)} from the run summary"
        "</footer></main></body></html>\n"
    )
