"""The live Voice view page (core: pure): summary so far + live state in, HTML out.

Sections: the header with the live verdict and key numbers; SLO checks with the invalid-run
warning; harness limits now (frame lateness, receive lag, CPU of each worker); latency and
totals; per scenario; TTFB and barge-in percentiles over time with the SLO targets dashed;
active callers and failures by error name over time (each on its own axes, never beside
connect times); harness health over time; failures; downloads (CSV, JSON).

The page is self-contained (inline CSS, SVG and a few lines of script, nothing loaded from
elsewhere) and uses relative URLs only (the page is ``<base>/voice``; it fetches
``voice/fragment``), so it works through a Service, ``kubectl port-forward``, an ingress path
prefix and Locust's ``--web-base-path``. Every value is escaped before it reaches the page, so
swapping a fragment in with ``innerHTML`` inserts no markup from the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadtest.metrics import report_plots as plots
from loadtest.metrics.html import CSS, esc, fmt_int, fmt_ms, fmt_pct, note, table, with_unit
from loadtest.metrics.live import LiveState, harness_checks, live_verdict
from loadtest.metrics.report import (
    failures_section,
    harness_section,
    numbers_section,
    plot_section,
    slo_section,
)
from loadtest.metrics.report_plots import as_map, as_number
from loadtest.metrics.svg import PALETTE, Series, line_chart

__all__ = ["render_live_body", "render_live_page"]

_REFRESH_MS = 3000
_SCRIPT = """(function(){var main=document.getElementById("live"),
status=document.getElementById("live-status");function tick(){
fetch("voice/fragment",{cache:"no-store",credentials:"same-origin"}).then(function(r){
if(!r.ok){throw new Error("HTTP "+r.status);}return r.text();}).then(function(t){
main.innerHTML=t;status.textContent="updated "+new Date().toLocaleTimeString();
status.className="";}).catch(function(e){status.textContent="not updated: "+e.message+
" (retrying)";status.className="stale";}).then(function(){setTimeout(tick,REFRESH);});}
setTimeout(tick,REFRESH);})();"""
_EXTRA_CSS = """
#live-status{color:#6b7280;font-size:12px;text-align:right;margin:8px 0 0}
#live-status.stale{color:#b91c1c;font-weight:700}
.downloads a{margin-right:18px}
"""


def _header(summary: Mapping[str, Any], live: LiveState) -> str:
    run, metrics = as_map(summary.get("run")), as_map(summary.get("metrics"))
    verdict, _ = live_verdict(summary)
    css = verdict if verdict in ("pass", "warn", "fail", "invalid") else "no_data"
    facts = [
        ("State", live.state),
        ("Callers", fmt_int(live.users)),
        ("Workers", fmt_int(len(live.workers))),
        ("Target", str(run.get("target") or "–")),
        ("Running for", _elapsed(run.get("duration_s"))),
    ]
    kpis = [
        (with_unit(fmt_ms(as_map(metrics.get("ttfb_ms")).get("p50")), " ms"), "TTFB p50"),
        (with_unit(fmt_ms(as_map(metrics.get("ttfb_ms")).get("p95")), " ms"), "TTFB p95"),
        (with_unit(fmt_ms(as_map(metrics.get("barge_in_ms")).get("p95")), " ms"), "barge-in p95"),
        (fmt_pct(as_map(summary.get("rates")).get("turn_success")), "turn success"),
    ]
    return (
        '<header id="section-header"><div><h1>Voice view — live</h1><dl>'
        + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
        + '</dl></div><div class="side">'
        + f'<span id="verdict" class="badge {css}">{esc(verdict.upper())}</span>'
        + '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in kpis)
        + "</div></div></header>"
    )


def _elapsed(value: object) -> str:
    seconds = as_number(value)
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _scenario_section(summary: Mapping[str, Any]) -> str:
    scenarios = as_map(summary.get("scenarios"))
    rows = []
    for scenario, entry in scenarios.items():
        entry = as_map(entry)
        for metric, stats in entry.items():
            if isinstance(stats, Mapping):
                rows.append(
                    (
                        esc(scenario),
                        esc(metric),
                        fmt_int(stats.get("count")),
                        *(fmt_ms(stats.get(s)) for s in ("p50", "p90", "p95", "p99")),
                    )
                )
        rows.append(
            (
                esc(scenario),
                "turn success",
                fmt_int(entry.get("turns")),
                fmt_pct(entry.get("turn_success")),
                "",
                "",
                "",
            )
        )
    body = (
        table(
            ("scenario", "metric (ms)", "count", "p50", "p90", "p95", "p99"),
            rows,
            table_id="scenario-table",
            text_cols=2,
        )
        if rows
        else note("no scenario has finished a turn yet")
    )
    return f'<section id="section-scenarios"><h2>Per scenario</h2>{body}</section>'


def _over_time(summary: Mapping[str, Any]) -> list[str]:
    """Active callers, and failures by error name per window: separate figures and axes."""
    raw = summary.get("timeline")
    entries = [as_map(e) for e in raw] if isinstance(raw, list) else []
    entries = [e for e in entries if as_number(e.get("t_s")) is not None]
    if not entries:
        return [
            f"<figure><h3>Active callers and failures</h3>"
            f"{note('the first 5 s window has not closed yet')}</figure>"
        ]
    xs = [float(e["t_s"]) for e in entries]
    callers = Series(
        "active callers",
        tuple(zip(xs, (as_number(e.get("users")) for e in entries), strict=True)),
        PALETTE[5],
    )
    figures = [_figure("plot-active-calls-over-time", "Active callers", [callers], "callers")]
    names = sorted({str(k) for e in entries for k in as_map(e.get("failures"))})
    failures = [
        Series(
            name,
            tuple(
                (x, as_number(as_map(e.get("failures")).get(name)) or 0.0)
                for x, e in zip(xs, entries, strict=True)
            ),
            PALETTE[i % len(PALETTE)],
        )
        for i, name in enumerate(names)
    ]
    figures.append(
        _figure(
            "plot-failures-over-time",
            "Failures by error name (per 5 s window)",
            failures,
            "failures",
        )
        if failures
        else f"<figure><h3>Failures by error name</h3>{note('no failures so far')}</figure>"
    )
    return figures


def _figure(plot_id: str, title: str, series: list[Series], y_label: str) -> str:
    plot = line_chart(plot_id, title, series, x_label="seconds since start", y_label=y_label)
    return f"<figure><h3>{esc(title)}</h3>{plot}</figure>"


def _workers_section(summary: Mapping[str, Any], live: LiveState) -> str:
    rows = []
    for check in harness_checks(live, summary):
        shown = "–" if check.actual is None else f"{check.actual:.1f}{check.unit}"
        label = "over" if check.status == "invalid" else check.status.replace("_", " ")
        rows.append(
            (
                esc(check.name),
                esc(shown),
                esc(f"< {check.limit:g}{check.unit}"),
                f'<span class="status {check.status}">{esc(label)}</span>',
            )
        )
    return (
        '<section id="section-health"><h2>Harness limits now</h2>'
        + table(("", "actual", "limit", "status"), rows, table_id="health-table")
        + "</section>"
    )


def render_live_body(summary: Mapping[str, Any], live: LiveState) -> str:
    """The view's content (what the page refreshes in place)."""
    _, reasons = live_verdict(summary)
    shown = dict(summary)
    shown["slo"] = {**as_map(summary.get("slo")), "reasons": reasons}
    downloads = (
        '<section id="section-downloads" class="downloads"><h2>Downloads</h2>'
        '<a href="voice/table.csv">voice table (CSV)</a>'
        '<a href="voice/slo.csv">SLO and harness table (CSV)</a>'
        '<a href="voice/data.json">everything shown here (JSON)</a></section>'
    )
    return "".join(
        (
            _header(summary, live),
            slo_section(shown),
            _workers_section(summary, live),
            numbers_section(summary),
            _scenario_section(summary),
            plot_section(
                "section-percentiles",
                "Percentiles over time",
                [plots.percentiles_over_time(summary)],
            ),
            plot_section("section-activity", "Callers and failures over time", _over_time(summary)),
            harness_section(summary),
            failures_section(summary),
            downloads,
        )
    )


def render_live_page(summary: Mapping[str, Any], live: LiveState) -> str:
    """The whole Voice view page; it fetches ``voice/fragment`` every few seconds."""
    script = _SCRIPT.replace("REFRESH", str(_REFRESH_MS))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Voice view — voice-loadtest</title><style>{CSS}{_EXTRA_CSS}</style></head>"
        f'<body><main><div id="live">{render_live_body(summary, live)}</div>'
        '<p id="live-status">live: updates every few seconds</p></main>'
        f"<script>{script}</script></body></html>\n"
    )
