"""How a comparison reads (core: pure): the terminal table, the HTML comparison report with
overlaid distributions and trends, and the run report's "compared with baseline" section.

Plot ids (stable): ``plot-<metric>-distribution-overlay`` (``ttfb``, ``barge-in``,
``greeting``, ``talk-over``) and, with three runs or more, ``plot-trend-<metric>`` (one per
latency in the summaries, e.g. ``plot-trend-ttfb``), ``plot-trend-rates``,
``plot-trend-failures`` and ``plot-trend-harness``. Tables: ``runs-table``, ``gate-table``,
``compare-table``, ``differences-table``, ``baseline-table``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from loadtest import __version__
from loadtest.metrics.compare import Comparison, Row
from loadtest.metrics.compare_gate import Finding
from loadtest.metrics.compare_plots import overlay_plots, trend_plots
from loadtest.metrics.html import CSS, badge, esc, note, table, when
from loadtest.metrics.report_plots import (
    as_map,
    as_number,
)

__all__ = ["baseline_section", "format_comparison", "render_comparison"]

_GROUPS = (
    ("latency", "Latency"),
    ("rate", "Success rates"),
    ("count", "Counts"),
    ("harness", "Harness health"),
    ("scenario", "Per scenario"),
)
_TEXT_RUNS = 4  # compared runs the terminal table has room for; the HTML shows them all
_EXTRA_CSS = """
.worse{color:#b91c1c;font-weight:600}.better{color:#15803d}
"""


def _value(row: Row, value: float | None) -> str:
    if value is None:
        return "n/a"
    if row.unit == "ratio":
        return f"{value * 100:.1f} %"
    if row.unit == "count":
        return f"{value:,.0f}"
    if row.unit == "ms":
        return f"{value:,.1f}"
    return f"{value:.4g}"


def _change(row: Row, index: int) -> str:
    change, pct = row.change(index), row.change_pct(index)
    if change is None:
        return "n/a"
    if change == 0:
        return "="
    if row.unit == "ratio":
        return f"{change:+.1f} pt"
    relative = "" if pct is None or not math.isfinite(pct) else f" ({pct:+.1f} %)"
    if row.unit == "ms":
        return f"{change:+,.1f} ms{relative}"
    if row.unit == "count":
        return f"{change:+,.0f}{relative}"
    return f"{change:+.4g}{relative}"


def _num(value: object) -> str:
    number = as_number(value)
    return "n/a" if number is None else f"{number:.6g}"


def _direction(row: Row, index: int) -> str:
    change = row.change(index)
    if not change or not row.worse:
        return ""
    return "worse" if change * row.worse > 0 else "better"


def _listed(comparison: Comparison) -> list[tuple[str, list[Row]]]:
    """Rows worth showing side by side, by group: shown stats with data somewhere (counts
    that are zero in every run are left out)."""
    out = []
    for group, title in _GROUPS:
        rows = [
            r
            for r in comparison.rows
            if r.group == group
            and r.shown
            and any(v is not None for v in r.values)
            and not (r.unit == "count" and all(not v for v in r.values))
        ]
        if rows:
            out.append((title, rows))
    return out


def _finding_change(change: float | None, unit: str) -> str:
    if change is None:
        return "n/a"
    if not math.isfinite(change):
        return "new"  # the baseline had 0
    return f"{change:+.1f} {unit}".rstrip()


def _finding_line(f: Finding) -> str:
    shown = _finding_change(f.change, f.unit)
    return f"  {f.run}: {f.rule:<28} {shown:>12}  {f.status.replace('_', ' ').upper()}"


def format_comparison(
    comparison: Comparison, findings: Sequence[Finding] = (), *, exit_code: int | None = None
) -> str:
    """A plain-text side-by-side table for the terminal (baseline and up to four runs)."""
    runs = comparison.runs
    shown = list(range(1, len(runs)))[-_TEXT_RUNS:]
    lines = ["runs:"]
    lines += [
        f"  {'base' if i == 0 else f'#{i}':<5} {r.label}  {when(r.started_at or None)}"
        for i, r in enumerate(runs)
    ]
    if len(runs) - 1 > len(shown):
        lines.append(f"  (the table shows the last {len(shown)} runs; the HTML has them all)")
    for i, reasons in enumerate(comparison.not_comparable, start=1):
        lines += [f"NOT COMPARABLE #{i}: {reason}" for reason in reasons]
    head = f"{'':<34}{'base':>12}" + "".join(f"{f'#{i}':>12}{f'change #{i}':>26}" for i in shown)
    lines += ["", head]
    for title, rows in _listed(comparison):
        lines.append(title.lower())
        for row in rows:
            cells = "".join(f"{_value(row, row.values[i]):>12}{_change(row, i):>26}" for i in shown)
            lines.append(f"  {row.key:<32}{_value(row, row.values[0]):>12}{cells}")
    if comparison.settings:
        lines += ["", "settings that differ:"]
        lines += [f"  {name:<24}" + " | ".join(values) for name, values in comparison.settings]
    if findings:
        lines += ["", "gate:"] + [_finding_line(f) for f in findings]
    if exit_code is not None:
        word = {0: "OK", 1: "REGRESSION", 2: "NOT COMPARABLE"}.get(exit_code, "?")
        lines.append(f"verdict: {word} (exit code {exit_code})")
    return "\n".join(lines)


def _compare_table(comparison: Comparison) -> str:
    compared = range(1, len(comparison.runs))
    head = ["quantity", "base", *(h for i in compared for h in (f"#{i}", f"change #{i}"))]
    rows: list[list[str]] = []
    for title, listed in _listed(comparison):
        rows.append([f"<b>{esc(title)}</b>", *([""] * (len(head) - 1))])
        for row in listed:
            cells = [esc(row.key), esc(_value(row, row.values[0]))]
            for i in compared:
                direction = _direction(row, i)
                change = esc(_change(row, i))
                cells += [
                    esc(_value(row, row.values[i])),
                    f'<span class="{direction}">{change}</span>' if direction else change,
                ]
            rows.append(cells)
    return table(head, rows, table_id="compare-table")


def _gate(findings: Sequence[Finding], fail_on: str) -> str:
    if not findings:
        return ""
    rows = [
        (
            esc(f.run),
            esc(f.rule),
            esc(_num(f.base)),
            esc(_num(f.new)),
            esc(_finding_change(f.change, f.unit)),
            f'<span class="status {_STATUS_CSS.get(f.status, "no_data")}">'
            f"{esc(f.status.replace('_', ' '))}</span>",
        )
        for f in findings
    ]
    return (
        f'<section id="section-gate"><h2>Gate: {esc(fail_on)}</h2>'
        + table(
            ("run", "rule", "base", "run's value", "change", "status"),
            rows,
            table_id="gate-table",
            text_cols=2,
        )
        + "</section>"
    )


_STATUS_CSS = {"ok": "pass", "regression": "fail", "no_data": "no_data"}


def _differences(settings: Sequence[tuple[str, Sequence[str]]], labels: Sequence[str]) -> str:
    if not settings:
        return note("the runs' settings are the same")
    rows = [(esc(name), *(esc(v) for v in values)) for name, values in settings]
    return table(
        ("setting", *labels), rows, table_id="differences-table", text_cols=len(labels) + 1
    )


def render_comparison(
    comparison: Comparison,
    findings: Sequence[Finding] = (),
    *,
    fail_on: str = "",
    force: bool = False,
    exit_code: int | None = None,
) -> str:
    """The comparison as one self-contained HTML page (no script, nothing loaded)."""
    runs = comparison.runs
    labels = ["base", *(f"#{i}" for i in range(1, len(runs)))]
    run_rows = []
    for label, run in zip(labels, runs, strict=True):
        slo = as_map(run.summary.get("slo"))
        run_rows.append(
            (
                esc(label),
                esc(run.label),
                esc(when(run.started_at or None)),
                badge(str(slo.get("verdict") or "?"), slo.get("exit_code")),
            )
        )
    out = [
        '<header id="section-header"><div><h1>Run comparison</h1>',
        table(("", "summary", "started", "verdict"), run_rows, table_id="runs-table", text_cols=3),
        "</div></header>",
    ]
    reasons = [
        f"{labels[i]}: {reason}"
        for i, found in enumerate(comparison.not_comparable, start=1)
        for reason in found
    ]
    if reasons:
        forced = " (compared anyway: --force)" if force else ""
        out.append(
            f'<section id="section-comparable"><div id="not-comparable" class="reasons">'
            f"<b>Not comparable{esc(forced)}</b><ul>"
            + "".join(f"<li>{esc(r)}</li>" for r in reasons)
            + "</ul></div></section>"
        )
    out.append(_gate(findings, fail_on))
    out.append('<section id="section-compare"><h2>Side by side</h2>')
    out.append(_compare_table(comparison) + "</section>")
    out.append('<section id="section-differences"><h2>Settings that differ</h2>')
    out.append(_differences(comparison.settings, labels) + "</section>")
    named = [(f"{lab} {run.label}", run.summary) for lab, run in zip(labels, runs, strict=True)]
    figures = overlay_plots(named) or [note("no distributions in these summaries")]
    out.append('<section id="section-overlays"><h2>Distributions overlaid</h2><div class="grid">')
    out.append("".join(figures) + "</div></section>")
    if len(runs) >= 3:
        ordered = sorted(runs, key=lambda r: (r.started_at == "", r.started_at))
        legend = [
            (esc(str(i)), esc(r.label), esc(when(r.started_at or None)))
            for i, r in enumerate(ordered, start=1)
        ]
        out.append('<section id="section-trends"><h2>Trends over the runs</h2>')
        out.append(
            table(("run", "summary", "started"), legend, table_id="trend-runs-table", text_cols=3)
        )
        out.append('<div class="grid">' + "".join(trend_plots([r.summary for r in ordered])))
        out.append("</div></section>")
    if exit_code is not None:
        word = {0: "no regression", 1: "regression", 2: "not comparable"}.get(exit_code, "?")
        out.append(f"<footer>verdict: {esc(word)} (exit code {exit_code})</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>voice-loadtest comparison</title><style>{CSS}{_EXTRA_CSS}</style></head>"
        f"<body><main>{''.join(out)}<footer>generated by voice-loadtest {esc(__version__)}"
        "</footer></main></body></html>\n"
    )


def baseline_section(summary: Mapping[str, Any]) -> str:
    """The run report's comparison with its baseline (``summary["baseline"]``), or ``""``."""
    block = as_map(summary.get("baseline"))
    if not block:
        return ""
    out = [
        f'<section id="section-baseline"><h2>Compared with baseline {esc(block.get("file"))}'
        f"</h2><p>Baseline started {esc(when(block.get('started_at')))}.</p>"
    ]
    reasons = [str(r) for r in block.get("reasons") or ()]
    if reasons:
        forced = " (compared anyway: --force)" if block.get("forced") else ""
        out.append(
            f'<div class="reasons"><b>Not comparable{esc(forced)}</b><ul>'
            + "".join(f"<li>{esc(r)}</li>" for r in reasons)
            + "</ul></div>"
        )
    findings = [as_map(f) for f in block.get("findings") or ()]
    if findings:
        rows = [
            (
                esc(f.get("rule")),
                esc(_num(f.get("base"))),
                esc(_num(f.get("new"))),
                esc(_finding_change(as_number(f.get("change")), str(f.get("unit") or ""))),
                f'<span class="status {_STATUS_CSS.get(str(f.get("status")), "no_data")}">'
                f"{esc(str(f.get('status')).replace('_', ' '))}</span>",
            )
            for f in findings
        ]
        out.append(
            table(
                ("rule", "baseline", "this run", "change", "status"),
                rows,
                table_id="baseline-gate-table",
            )
        )
    quantity_rows: list[tuple[str, ...]] = []
    for entry in (as_map(r) for r in block.get("rows") or ()):
        row = Row(
            str(entry.get("key")),
            str(entry.get("group")),
            str(entry.get("unit")),
            (as_number(entry.get("base")), as_number(entry.get("new"))),
        )
        if entry.get("shown", True) and entry.get("group") in ("latency", "rate", "harness"):
            quantity_rows.append(
                (
                    esc(row.key),
                    esc(_value(row, row.values[0])),
                    esc(_value(row, row.values[1])),
                    esc(_change(row, 1)),
                )
            )
    out.append(
        table(
            ("quantity", "baseline", "this run", "change"),
            quantity_rows,
            table_id="baseline-table",
        )
    )
    base = {
        "distributions": block.get("distributions"),
        "distribution_bucket_ms": block.get("distribution_bucket_ms"),
    }
    figures = overlay_plots([("baseline", base), ("this run", summary)])
    out.append('<div class="grid">' + "".join(figures) + "</div></section>")
    return "".join(out)
