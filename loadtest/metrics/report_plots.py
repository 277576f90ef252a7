"""The report's figures (core): turn parts of a run-summary dict into captioned inline SVG.

Each function takes the whole summary and returns ``<figure>`` markup; when the data a plot
needs is absent it returns a figure holding a short note instead (no ``<svg>``, no plot id).
Summaries are read defensively (:func:`as_map`, :func:`as_number`): an older summary without
``distributions`` or ``timeline``, or one with a malformed part, never raises.

Optional summary keys read here:

* ``distributions.<metric>_ms``: ``[[bucket_start_ms, count], …]`` in buckets of
  ``distribution_bucket_ms`` (1 ms; older summaries have no such key and 10 ms buckets);
* ``timeline``: ``[{"t_s", "users", "ttfb_ms": {count,p50,p95,p99}, "barge_in_ms": {…},
  "connection_success", "turn_success", "barge_in_success", "turns", "calls",
  "frame_lateness_ms": {p50,p99}, "worker_cpu_max"}, …]`` — one entry per ~5 s window,
  counts per window, ``t_s`` in seconds since the start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from loadtest.metrics.svg import PALETTE, Bar, Marker, Series, hbar_chart, histogram, line_chart

__all__ = [
    "DISTRIBUTION_BUCKET_MS",
    "as_map",
    "as_number",
    "bar_width",
    "bucket_ms",
    "clean_buckets",
    "distributions",
    "failures_plot",
    "harness_plots",
    "pad_bars",
    "percentiles_over_time",
    "rebin",
    "shown_cut",
    "slo_targets",
    "success_plots",
]

DISTRIBUTION_BUCKET_MS = 10.0  # bucket width of summaries written before the width was recorded
_MAX_BARS = 60
_MIN_BARS = 10  # the x axis spans at least this many bars, so a narrow spread reads as narrow
_WIDTHS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000)
_SHOWN_FRACTION = 0.995  # the histogram's x axis ends where 99.5 % of the samples are
_SLO_COLOR = "#dc2626"
_MAX_FAILURE_BARS = 15
_THRESHOLD = re.compile(r"^\s*[<>]=?\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)")

# (summary key, plot id stem, human name, always shown)
_DISTRIBUTIONS = (
    ("ttfb_ms", "ttfb", "TTFB", True),
    ("barge_in_ms", "barge-in", "barge-in", True),
    ("greeting_ms", "greeting", "greeting", False),
    ("talk_over_ms", "talk-over", "talk-over after barge-in", False),
)


def as_map(value: object) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_number(value: object) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _figure(title: str, body: str) -> str:
    return f"<figure><h3>{escape(title)}</h3>{body}</figure>"


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def bucket_ms(summary: Mapping[str, Any]) -> float:
    """The width of the summary's distribution buckets in ms (10 for older summaries)."""
    width = as_number(summary.get("distribution_bucket_ms"))
    return width if width is not None and width > 0 else DISTRIBUTION_BUCKET_MS


def bar_width(low_ms: float, high_ms: float, bucket: float, max_bars: int = _MAX_BARS) -> float:
    """The narrowest round width (1, 2, 5 × 10ⁿ ms, a multiple of ``bucket``) that covers
    ``[low_ms, high_ms)`` in at most ``max_bars`` bars."""
    width = bucket
    for step in _WIDTHS_MS:
        if step < bucket or not math.isclose(step / bucket, round(step / bucket)):
            continue
        width = float(step)
        if (high_ms - low_ms) / width <= max_bars:
            break
    return width


def clean_buckets(buckets: object) -> list[tuple[float, int]]:
    """Well-formed ``[start_ms, count]`` rows with a positive count, sorted; others skipped."""
    clean: list[tuple[float, int]] = []
    for row in buckets if isinstance(buckets, list | tuple) else ():
        if isinstance(row, list | tuple) and len(row) == 2:
            start, count = as_number(row[0]), as_number(row[1])
            if start is not None and count is not None and count > 0:
                clean.append((start, int(count)))
    return sorted(clean)


def shown_cut(clean: Sequence[tuple[float, int]]) -> float:
    """The bucket start at which 99.5 % of the samples are reached (the axis ends there)."""
    total, seen = sum(n for _, n in clean), 0
    for start, count in clean:
        seen += count
        if seen >= total * _SHOWN_FRACTION:
            return start
    return clean[-1][0]


def rebin(
    buckets: object, max_bars: int = _MAX_BARS, bucket: float = DISTRIBUTION_BUCKET_MS
) -> tuple[list[Bar], int, float | None]:
    """Merge ``[[start_ms, count], …]`` buckets of width ``bucket`` ms into at most
    ``max_bars`` bars of the narrowest round width (:func:`bar_width`) the data allows, cut
    at the 99.5th percentile so one outlier does not squash the shape. Returns ``(bars,
    samples_beyond_cut, max_start_ms)``; malformed rows are skipped."""
    clean = clean_buckets(buckets)
    if not clean:
        return [], 0, None
    cut = shown_cut(clean)
    width = bar_width(clean[0][0], cut + bucket, bucket, max_bars)
    merged: dict[float, int] = {}
    beyond = 0
    for start, count in clean:
        if start > cut:
            beyond += count
            continue
        key = round(math.floor(start / width + 1e-9) * width, 6)
        merged[key] = merged.get(key, 0) + count
    bars = [Bar(start, start + width, n) for start, n in sorted(merged.items())]
    return bars, beyond, clean[-1][0]


def pad_bars(bars: Sequence[Bar], min_bars: int = _MIN_BARS) -> list[Bar]:
    """``bars`` with empty bars either side (never below 0), so the axis spans at least
    ``min_bars`` bar widths: a spread of 2 ms then draws as two narrow bars, not one block
    filling the axis."""
    if not bars:
        return []
    width = bars[0].end - bars[0].start
    low, high = bars[0].start, bars[-1].end
    missing = min_bars - round((high - low) / width)
    if missing <= 0:
        return list(bars)
    before = min(missing // 2, int(low / width + 1e-9))
    after = missing - before
    return (
        [Bar(low - (i + 1) * width, low - i * width, 0) for i in reversed(range(before))]
        + list(bars)
        + [Bar(high + i * width, high + (i + 1) * width, 0) for i in range(after)]
    )


def slo_targets(summary: Mapping[str, Any], metric: str) -> list[tuple[str, float]]:
    """``(stat, target_ms)`` of each latency SLO check on ``metric`` (e.g. ``ttfb``)."""
    found = []
    for check in as_map(summary.get("slo")).get("checks") or ():
        check = as_map(check)
        match = re.fullmatch(rf"{re.escape(metric)}_(p\d+|max)_ms", str(check.get("name", "")))
        threshold = _THRESHOLD.match(str(check.get("threshold", "")))
        if match and threshold:
            found.append((match.group(1), float(threshold.group(1))))
    return found


def distributions(summary: Mapping[str, Any]) -> list[str]:
    """Histogram figures: TTFB and barge-in always (or a note), greeting and talk-over when
    they have samples."""
    metrics, dists = as_map(summary.get("metrics")), as_map(summary.get("distributions"))
    bucket = bucket_ms(summary)
    figures = []
    for key, stem, name, always in _DISTRIBUTIONS:
        stats = as_map(metrics.get(key))
        bars, beyond, max_start = rebin(dists.get(key), bucket=bucket)
        title = f"{name[0].upper()}{name[1:]} distribution"
        if not bars:
            if not always and not as_number(stats.get("count")):
                continue
            if as_number(stats.get("count")):
                body = _note(f"no {name} distribution in this summary (older format)")
            else:
                body = _note(f"no {name} samples")
            figures.append(_figure(title, body))
            continue
        markers = [
            Marker(value, f"{stat} {value:,.0f} ms", color)
            for stat, color in (("p50", "#374151"), ("p95", "#7c3aed"))
            if (value := as_number(stats.get(stat))) is not None
        ]
        markers += [
            Marker(target, f"SLO {stat} < {target:g} ms", _SLO_COLOR)
            for stat, target in slo_targets(summary, key.removesuffix("_ms"))
        ]
        body = histogram(
            f"plot-{stem}-distribution",
            title,
            pad_bars(bars),
            x_label=f"{name} (ms)",
            markers=markers,
        )
        if beyond and max_start is not None:
            body += _note(
                f"{beyond:,} slowest samples (up to {max_start + bucket:,.0f} ms) "
                f"beyond {bars[-1].end:,.0f} ms are not drawn"
            )
        figures.append(_figure(title, body))
    return figures


def _timeline(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = summary.get("timeline")
    entries = [as_map(e) for e in raw] if isinstance(raw, list | tuple) else []
    timed = [e for e in entries if as_number(e.get("t_s")) is not None]
    return sorted(timed, key=lambda e: float(e["t_s"]))


def _time_axis(entries: Sequence[Mapping[str, Any]]) -> tuple[list[float], str]:
    seconds = [float(e["t_s"]) for e in entries]
    if seconds and seconds[-1] > 900:
        return [s / 60 for s in seconds], "minutes since start"
    return seconds, "seconds since start"


def _series(name: str, xs: Sequence[float], ys: Sequence[float | None], color: str) -> Series:
    return Series(name, tuple(zip(xs, ys, strict=True)), color)


def _pick(
    entries: Sequence[Mapping[str, Any]], *path: str, scale: float = 1.0
) -> list[float | None]:
    out: list[float | None] = []
    for entry in entries:
        value: object = entry
        for key in path:
            value = as_map(value).get(key)
        number = as_number(value)
        out.append(None if number is None else number * scale)
    return out


def _no_timeline(title: str) -> str:
    return _figure(title, _note("no timeline in this summary"))


def _line_figure(
    plot_id: str,
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    y_unit: str,
    y_max: float | None = None,
    references: Sequence[Marker] = (),
    empty: str = "no data in the timeline",
) -> str:
    """A captioned line chart of the series that have data, or the ``empty`` note."""
    shown = [s for s in series if any(y is not None for _, y in s.points)]
    if not shown:
        return _figure(title, _note(empty))
    plot = line_chart(
        plot_id,
        title,
        shown,
        x_label=x_label,
        y_label=y_label,
        y_max=y_max,
        y_unit=y_unit,
        references=references,
    )
    return _figure(title, plot)


def percentiles_over_time(summary: Mapping[str, Any]) -> str:
    """TTFB and barge-in p50/p95/p99 per window, SLO targets dashed; wrapped in
    ``<div id="plot-percentiles-over-time">``."""
    entries = _timeline(summary)
    xs, x_label = _time_axis(entries)
    figures = []
    for key, stem, name, _ in _DISTRIBUTIONS[:2]:
        title = f"{name[0].upper()}{name[1:]} percentiles over time"
        if not entries:
            figures.append(_no_timeline(title))
            continue
        series = [
            _series(stat, xs, _pick(entries, key, stat), color)
            for stat, color in (("p50", PALETTE[0]), ("p95", PALETTE[1]), ("p99", PALETTE[2]))
        ]
        references = [
            Marker(target, f"SLO {stat} < {target:g} ms", _SLO_COLOR)
            for stat, target in slo_targets(summary, key.removesuffix("_ms"))
        ]
        figures.append(
            _line_figure(
                f"plot-{stem}-percentiles-over-time",
                title,
                series,
                x_label=x_label,
                y_label=f"{name} (ms)",
                y_unit=" ms",
                references=references,
                empty=f"no {name} samples",
            )
        )
    return '<div id="plot-percentiles-over-time" class="grid">' + "".join(figures) + "</div>"


def success_plots(summary: Mapping[str, Any]) -> list[str]:
    """Success rates (%) and calls/turns/users per window."""
    entries = _timeline(summary)
    if not entries:
        return [_no_timeline("Success rates over time"), _no_timeline("Calls and turns")]
    xs, x_label = _time_axis(entries)
    rates = [
        _series(name, xs, _pick(entries, key, scale=100.0), color)
        for key, name, color in (
            ("connection_success", "connection", PALETTE[0]),
            ("turn_success", "turn", PALETTE[3]),
            ("barge_in_success", "barge-in", PALETTE[1]),
        )
    ]
    counts = [
        _series(name, xs, _pick(entries, key), color)
        for key, name, color in (
            ("calls", "calls started / window", PALETTE[0]),
            ("turns", "turns / window", PALETTE[3]),
            ("users", "active users", PALETTE[5]),
        )
    ]
    return [
        _line_figure("plot-success-over-time", "Success rates over time", rates,
                     x_label=x_label, y_label="success (%)", y_unit=" %", y_max=100.0),
        _line_figure("plot-counts-over-time", "Calls and turns", counts,
                     x_label=x_label, y_label="count", y_unit=""),
    ]  # fmt: skip


def harness_plots(summary: Mapping[str, Any]) -> list[str]:
    """Frame lateness p50/p99 and worker CPU per window."""
    entries = _timeline(summary)
    if not entries:
        return [_no_timeline("Frame lateness over time"), _no_timeline("Worker CPU over time")]
    xs, x_label = _time_axis(entries)
    lateness = [
        _series(stat, xs, _pick(entries, "frame_lateness_ms", stat), color)
        for stat, color in (("p50", PALETTE[0]), ("p99", PALETTE[2]))
    ]
    cpu = [_series("max over workers", xs, _pick(entries, "worker_cpu_max"), PALETTE[1])]
    return [
        _line_figure("plot-frame-lateness-over-time", "Frame lateness over time", lateness,
                     x_label=x_label, y_label="lateness (ms)", y_unit=" ms"),
        _line_figure("plot-worker-cpu-over-time", "Worker CPU over time", cpu,
                     x_label=x_label, y_label="CPU (%)", y_unit=" %"),
    ]  # fmt: skip


def failures_plot(summary: Mapping[str, Any]) -> str | None:
    """Horizontal bars of ``counts.failures`` (largest first, top 15 + "other"), or None."""
    failures = as_map(as_map(summary.get("counts")).get("failures"))
    items = sorted(
        ((str(k), int(n)) for k, v in failures.items() if (n := as_number(v) or 0) > 0),
        key=lambda item: (-item[1], item[0]),
    )
    if not items:
        return None
    if len(items) > _MAX_FAILURE_BARS:
        rest = items[_MAX_FAILURE_BARS - 1 :]
        other = (f"other ({len(rest)} names)", sum(n for _, n in rest))
        items = [*items[: _MAX_FAILURE_BARS - 1], other]
    plot = hbar_chart("plot-failures", "Failures by error name", items, x_label="failures")
    return _figure(f"{sum(n for _, n in items):,} failures", plot)
