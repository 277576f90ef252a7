"""The HTML run report: one self-contained page rendered from the run-summary dict.

:func:`render_report` is pure (summary in, HTML text out). The page needs no network to view:
CSS is inline, plots are inline SVG drawn by :mod:`loadtest.metrics.svg`, there is no script
and nothing is loaded from elsewhere. Every text value from the summary is escaped.

Sections, in order (each degrades to a short note when its data is missing): header (target,
start, duration, users, workers, verdict badge); SLO checks, invalid-run reasons, warnings and
how the run ended (a signal); latency percentiles and run totals; distributions of TTFB and
barge-in (greeting, talk-over when present); TTFB and barge-in p50/p95/p99 over time with SLO
targets as dashed lines; success rates and call/turn counts over time; harness health;
failures by error name, the agent's anomalies, the connection outage and lost workers;
settings.

Plot ids (stable, tests and tools look for them): ``plot-<metric>-distribution`` (``ttfb``,
``barge-in``, ``greeting``, ``talk-over``), ``plot-<metric>-percentiles-over-time`` (``ttfb``,
``barge-in``; both inside ``<div id="plot-percentiles-over-time">``),
``plot-success-over-time``, ``plot-counts-over-time``, ``plot-frame-lateness-over-time``,
``plot-worker-cpu-over-time``, ``plot-failures``.

The summary keys are those of :mod:`loadtest.metrics.summary` plus two optional ones:
``distributions.<metric>_ms`` (``[[bucket_start_ms, count], …]``, 10 ms buckets) and
``timeline`` (one entry per ~5 s window); :mod:`loadtest.metrics.report_plots` documents both.
:mod:`loadtest.metrics.report_cli` reads a summary file and writes the page (edge).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from loadtest import __version__
from loadtest.metrics import report_plots as plots
from loadtest.metrics.report_plots import as_map, as_number
from loadtest.metrics.voice_stats import INBOUND_ANOMALIES

__all__ = ["render_report"]

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
_VERDICTS = ("pass", "warn", "fail", "invalid")
_STATUSES = ("pass", "warn", "fail", "no_data")
_LATENCY_CHECK = re.compile(r"^[a-z_]+_(?:p\d+|max)_ms$")

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1360px;margin:0 auto;padding:20px 24px 40px}
header{display:flex;flex-wrap:wrap;align-items:center;gap:16px 28px;background:#fff;
border-radius:10px;padding:18px 22px;box-shadow:0 1px 2px #0000001a}
header h1{font-size:20px;margin:0 0 6px}
header dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:0}
header dt{color:#6b7280}
header dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:6px 16px;border-radius:999px;color:#fff;font-weight:700;
letter-spacing:.06em;font-size:18px}
.badge small{font-weight:400;letter-spacing:0;font-size:12px;opacity:.9}
.side{margin-left:auto;display:flex;flex-direction:column;align-items:flex-end;gap:12px}
.kpis{display:flex;flex-wrap:wrap;gap:10px}
.kpi{background:#f9fafb;border:1px solid #e5e7eb;border-radius:8px;padding:8px 14px;min-width:120px}
.kpi b{display:block;font-size:18px}
.kpi span{color:#6b7280;font-size:12px}
section{background:#fff;border-radius:10px;padding:14px 22px 18px;margin-top:18px;
box-shadow:0 1px 2px #0000001a}
h2{font-size:16px;margin:4px 0 12px}
h3{font-size:13px;margin:6px 0 4px;color:#374151}
.tables{display:flex;flex-wrap:wrap;gap:14px 32px;align-items:flex-start}
#latency-table td.text{white-space:nowrap}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:14px 24px}
figure{margin:0}
svg.plot{width:100%;max-width:760px;height:auto;display:block;font-family:inherit}
svg .tick{font-size:11px;fill:#4b5563}
svg .axis{font-size:12px;fill:#374151}
svg .legend{font-size:12px;fill:#111827}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:4px 12px;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f9fafb;font-weight:600}
th.text,td.text{text-align:left;overflow-wrap:break-word}
#settings-table td.text:last-child{overflow-wrap:anywhere}
.status{font-weight:700;padding:1px 8px;border-radius:4px;color:#fff}
.pass{background:#16a34a}.warn{background:#d97706}.fail{background:#dc2626}
.invalid{background:#6b7280}.no_data{background:#9ca3af}
.reasons{border-left:4px solid #6b7280;background:#f3f4f6;padding:8px 14px;margin:0 0 12px}
.reasons li{margin:2px 0}
.note{color:#6b7280;font-style:italic;margin:6px 0}
footer{color:#9ca3af;font-size:12px;margin-top:18px;text-align:center}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _ms(value: object) -> str:
    number = as_number(value)
    if number is None:
        return "–"
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:.1f}"


def _pct(value: object) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number * 100:.1f} %"


def _int(value: object) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number:,.0f}"


def _plain(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    number = as_number(value)
    if number is None:
        return "–" if value is None else str(value)
    return f"{number:.10g}"


def _with_unit(shown: str, unit: str) -> str:
    return shown if shown == "–" else shown + unit


def _when(value: object) -> str:
    if not isinstance(value, str):
        return "–"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    zone = "" if moment.tzinfo is None else f" {moment.tzname()}"
    return moment.strftime("%Y-%m-%d %H:%M:%S") + zone


def _duration(value: object) -> str:
    seconds = as_number(value)
    if seconds is None:
        return "–"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _table(
    head: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str, text_cols: int = 1
) -> str:
    """Cells in ``rows`` are HTML already (escaped by the caller); headers are escaped here."""
    out = [f'<table id="{_e(table_id)}"><thead><tr>']
    out += [
        f'<th class="text">{_e(h)}</th>' if i < text_cols else f"<th>{_e(h)}</th>"
        for i, h in enumerate(head)
    ]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = (
            f'<td class="text">{c}</td>' if i < text_cols else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _badge(verdict: str, exit_code: object) -> str:
    css = verdict if verdict in _VERDICTS else "invalid"
    code = "" if as_number(exit_code) is None else f" <small>exit {_int(exit_code)}</small>"
    return f'<span id="verdict" class="badge {css}">{_e(verdict.upper() or "?")}{code}</span>'


def _header(summary: Mapping[str, Any]) -> str:
    run, slo = as_map(summary.get("run")), as_map(summary.get("slo"))
    metrics, rates = as_map(summary.get("metrics")), as_map(summary.get("rates"))
    facts = [
        ("Target", _e(run.get("target") or "–")),
        ("Started", _e(_when(run.get("started_at")))),
        ("Duration", _e(_duration(run.get("duration_s")))),
        ("Users", _e(_int(run.get("users")))),
        ("Workers", _e(_int(run.get("workers")))),
    ]
    if run.get("role"):
        facts.append(("Mode", _e(run["role"])))
    kpis = [
        (_with_unit(_ms(as_map(metrics.get("ttfb_ms")).get("p95")), " ms"), "TTFB p95"),
        (_with_unit(_ms(as_map(metrics.get("barge_in_ms")).get("p95")), " ms"), "barge-in p95"),
        (_pct(rates.get("turn_success")), "turn success"),
        (_int(as_map(summary.get("counts")).get("calls")), "calls"),
    ]
    return (
        '<header id="section-header"><div><h1>Voice load test report</h1><dl>'
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        + '</dl></div><div class="side">'
        + _badge(str(slo.get("verdict") or ""), slo.get("exit_code"))
        + '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in kpis)
        + "</div></div></header>"
    )


def _slo_section(summary: Mapping[str, Any]) -> str:
    slo = as_map(summary.get("slo"))
    out = ['<section id="section-slo"><h2>SLO checks</h2>']
    reasons = [r for r in slo.get("reasons") or () if isinstance(r, str)]
    if reasons:
        out.append('<div id="invalid-reasons" class="reasons"><b>Invalid run</b> — this run')
        out.append(" cannot be judged:<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons))
        out.append("</ul></div>")
    warnings = [w for w in slo.get("warnings") or () if isinstance(w, str)]
    if warnings:
        out.append('<div id="slo-warnings" class="reasons"><b>Warning</b><ul>')
        out.append("".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")
    stopped = as_map(summary.get("run")).get("stopped_by")
    if stopped:
        out.append(
            f'<div id="stopped-by" class="reasons"><b>Stopped by signal</b> ({_e(stopped)}): '
            "the figures cover the run until then.</div>"
        )
    checks = [as_map(c) for c in slo.get("checks") or ()]
    if not checks:
        out.append(_note("no SLO checks in this summary"))
    else:
        rows = []
        for check in checks:
            name, status = str(check.get("name", "?")), str(check.get("status", "no_data"))
            actual = check.get("actual")
            if _LATENCY_CHECK.match(name):
                shown = _with_unit(_ms(actual), " ms")
            elif 0 <= (as_number(actual) or 0) <= 1:  # the rate checks: ratios shown as %
                shown = _pct(actual)
            else:
                shown = _plain(actual)
            css = status if status in _STATUSES else "no_data"
            rows.append(
                (
                    _e(name),
                    _e(check.get("threshold", "–")),
                    _e(shown),
                    f'<span class="status {css}">{_e(status.replace("_", " "))}</span>',
                )
            )
        out.append(
            _table(
                ("check", "threshold", "actual", "status"), rows, table_id="slo-table", text_cols=2
            )
        )
    out.append("</section>")
    return "".join(out)


def _numbers_section(summary: Mapping[str, Any]) -> str:
    metrics = as_map(summary.get("metrics"))
    names = [n for n in _METRIC_NAMES if n in metrics] + sorted(set(metrics) - set(_METRIC_NAMES))
    out = ['<section id="section-latency"><h2>Latency and totals</h2><div class="tables"><div>']
    if names:
        rows = []
        for name in names:
            stats = as_map(metrics[name])
            cells = [_ms(stats.get(k)) for k in ("p50", "p90", "p95", "p99", "max", "mean")]
            rows.append((_e(_METRIC_NAMES.get(name, name)), _int(stats.get("count")), *cells))
        out.append(
            _table(
                ("metric (ms)", "count", "p50", "p90", "p95", "p99", "max", "mean"),
                rows,
                table_id="latency-table",
            )
        )
    else:
        out.append(_note("no latency metrics in this summary"))
    counts, rates = as_map(summary.get("counts")), as_map(summary.get("rates"))
    totals = [(_e(label), _int(counts.get(key))) for key, label in _COUNT_NAMES.items()]
    totals += [(_e(label), _pct(rates.get(key))) for key, label in _RATE_NAMES.items()]
    out.append("</div><div>")
    out.append(_table(("run totals", "value"), totals, table_id="totals-table"))
    out.append("</div></div></section>")
    return "".join(out)


def _harness_section(summary: Mapping[str, Any]) -> str:
    harness = as_map(summary.get("harness"))
    lateness, lag = as_map(harness.get("frame_lateness_ms")), as_map(harness.get("receive_lag_ms"))
    rows = [
        ("Frame lateness (ms)", *(_ms(lateness.get(k)) for k in ("p50", "p99", "max"))),
        ("Receive-loop lag (ms)", *(_ms(lag.get(k)) for k in ("p50", "p99", "max"))),
    ]
    cpu = as_number(harness.get("worker_cpu_max"))
    facts = (
        f"<p>Realtime factor (audio time ÷ wall time while streaming; 1.0 is exact): "
        f"<b>{_e(_plain(harness.get('realtime_factor')))}</b> · worker CPU max: "
        f"<b>{_e('–' if cpu is None else f'{cpu:.0f} %')}</b></p>"
    )
    return (
        '<section id="section-harness"><h2>Harness health</h2>'
        + facts
        + _table(("", "p50", "p99", "max"), rows, table_id="harness-table")
        + '<div class="grid">'
        + "".join(plots.harness_plots(summary))
        + "</div></section>"
    )


def _failures_section(summary: Mapping[str, Any]) -> str:
    body = [plots.failures_plot(summary) or _note("no failures recorded")]
    counts = as_map(summary.get("counts"))
    rows = [(_e(name), _int(counts.get(name)), _e(doc)) for name, doc in INBOUND_ANOMALIES.items()]
    body.append("<h3>What the agent did wrong</h3>")
    body.append(
        _table(("anomaly", "count", "meaning"), rows, table_id="anomalies-table", text_cols=1)
    )
    outage = as_map(summary.get("outage"))
    if outage:
        body.append(
            f'<p id="outage"><b>Connection failures</b>: {_e(_int(outage.get("failed_attempts")))}'
            f" failed attempts from {_e(_when(outage.get('first_failure_at')))} to "
            f"{_e(_when(outage.get('last_failure_at')))} "
            f"({_e(_duration(outage.get('window_s')))}).</p>"
        )
    lost = [as_map(entry) for entry in summary.get("workers_lost") or ()]
    if lost:
        lost_rows = [
            (
                _e(entry.get("worker", "?")),
                _e(_when(entry.get("lost_at"))),
                _e(_duration(entry.get("t_s"))),
                _int(entry.get("calls_in_flight")),
            )
            for entry in lost
        ]
        body.append("<h3>Workers lost</h3>")
        body.append(
            _table(
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


def _settings_section(summary: Mapping[str, Any]) -> str:
    settings = as_map(summary.get("settings"))
    if not settings:
        body = _note("no settings in this summary")
    else:
        rows = [(_e(k), _e(_plain(settings[k]))) for k in sorted(settings, key=str)]
        body = _table(("setting", "value"), rows, table_id="settings-table", text_cols=2)
    return f'<section id="section-settings"><h2>Settings</h2>{body}</section>'


def _plot_section(section_id: str, title: str, figures: Sequence[str]) -> str:
    return (
        f'<section id="{section_id}"><h2>{_e(title)}</h2><div class="grid">'
        + "".join(figures)
        + "</div></section>"
    )


_SECTIONS: tuple[Callable[[Mapping[str, Any]], str], ...] = (
    _header,
    _slo_section,
    _numbers_section,
    lambda s: _plot_section("section-distributions", "Distributions", plots.distributions(s)),
    lambda s: _plot_section(
        "section-percentiles", "Percentiles over time", [plots.percentiles_over_time(s)]
    ),
    lambda s: _plot_section(
        "section-success", "Success rates and throughput over time", plots.success_plots(s)
    ),
    _harness_section,
    _failures_section,
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
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>{body}"
        f"<footer>generated by voice-loadtest {_e(__version__)} from the run summary"
        "</footer></main></body></html>\n"
    )
