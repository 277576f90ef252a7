"""Figures of a run comparison (core: pure): overlaid distributions and trends over runs.

:func:`overlay_plots` draws each run's share of samples per bar, on one bar width chosen from
all runs' data (:func:`~loadtest.metrics.report_plots.bar_width`), so runs of different sizes
overlay. :func:`trend_plots` draws one point per run, oldest first. Plot ids are listed in
:mod:`loadtest.metrics.compare_report`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from loadtest.metrics.html import esc
from loadtest.metrics.report_plots import (
    as_map,
    as_number,
    bar_width,
    bucket_ms,
    clean_buckets,
    shown_cut,
    slo_targets,
)
from loadtest.metrics.svg import PALETTE, Marker, Series, line_chart

__all__ = ["overlay_plots", "trend_plots"]

_OVERLAYS = (
    ("ttfb_ms", "ttfb", "TTFB"),
    ("barge_in_ms", "barge-in", "Barge-in"),
    ("greeting_ms", "greeting", "Greeting"),
    ("talk_over_ms", "talk-over", "Talk-over after barge-in"),
)


def _density(rows: list[tuple[float, int]], width: float, low: float, high: float) -> list[float]:
    bins = [0] * max(1, math.ceil((high - low) / width - 1e-9))
    total = sum(n for _, n in rows) or 1
    for start, count in rows:
        index = int((start - low) / width + 1e-9)
        if 0 <= index < len(bins):
            bins[index] += count
    return [100.0 * n / total for n in bins]


def overlay_plots(named: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """One figure per distribution that any of the ``(label, summary)`` runs has: each run's
    share of samples per bar (so runs of different size overlay), on one shared bar width."""
    figures = []
    for key, stem, name in _OVERLAYS:
        data = [
            (label, rows, bucket_ms(summary))
            for label, summary in named
            if (rows := clean_buckets(as_map(summary.get("distributions")).get(key)))
        ]
        if not data:
            continue
        bucket = max(b for _, _, b in data)
        low = min(math.floor(rows[0][0] / bucket) * bucket for _, rows, _ in data)
        high = max(shown_cut(rows) + b for _, rows, b in data)
        width = bar_width(low, high, bucket)
        low = math.floor(low / width) * width
        series = []
        for i, (label, rows, _) in enumerate(data):
            shares = _density(rows, width, low, high)
            points = tuple((low + (k + 0.5) * width, y) for k, y in enumerate(shares))
            series.append(Series(label, points, PALETTE[i % len(PALETTE)]))
        title = f"{name} distribution"
        plot = line_chart(
            f"plot-{stem}-distribution-overlay",
            title,
            series,
            x_label=f"{name} (ms), {width:g} ms bars",
            y_label="share of samples (%)",
            y_unit=" %",
        )
        figures.append(f"<figure><h3>{esc(title)}</h3>{plot}</figure>")
    return figures


def _trend_series(
    runs: Sequence[Mapping[str, Any]], path: Sequence[str], name: str, color: str, scale: float
) -> Series:
    points = []
    for x, summary in enumerate(runs, start=1):
        value: object = summary
        for key in path:
            value = as_map(value).get(key)
        number = as_number(value)
        points.append((float(x), None if number is None else number * scale))
    return Series(name, tuple(points), color)


def _trend(
    plot_id: str,
    title: str,
    series: list[Series],
    y_label: str,
    unit: str,
    references: Sequence[Marker] = (),
) -> str:
    if not any(y is not None for s in series for _, y in s.points):
        return ""
    plot = line_chart(
        plot_id,
        title,
        [s for s in series if any(y is not None for _, y in s.points)],
        x_label="run (oldest to newest)",
        y_label=y_label,
        y_unit=unit,
        references=references,
        whole_x=True,
    )
    return f"<figure><h3>{esc(title)}</h3>{plot}</figure>"


def trend_plots(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each latency's p50/p95/p99, the success rates, failures and harness health per run
    (``summaries`` oldest first), SLO targets of the newest run dashed."""
    metrics = dict.fromkeys(m for s in summaries for m in as_map(s.get("metrics")))
    figures = []
    for metric in metrics:
        base = metric.removesuffix("_ms")
        series = [
            _trend_series(summaries, ("metrics", metric, stat), stat, PALETTE[i], 1.0)
            for i, stat in enumerate(("p50", "p95", "p99"))
        ]
        references = [
            Marker(target, f"SLO {stat} < {target:g} ms", "#dc2626")
            for stat, target in slo_targets(summaries[-1], base)
        ]
        figures.append(
            _trend(
                f"plot-trend-{base.replace('_', '-')}",
                f"{base} over the runs",
                series,
                f"{base} (ms)",
                " ms",
                references,
            )
        )
    rates = [
        _trend_series(summaries, ("rates", key), key.replace("_", " "), PALETTE[i], 100.0)
        for i, key in enumerate(dict.fromkeys(k for s in summaries for k in as_map(s.get("rates"))))
    ]
    figures.append(_trend("plot-trend-rates", "Success rates", rates, "success (%)", " %"))
    failures = Series(
        "failures",
        tuple(
            (
                float(x),
                float(
                    sum(
                        n
                        for n in as_map(as_map(s.get("counts")).get("failures")).values()
                        if as_number(n) is not None
                    )
                ),
            )
            for x, s in enumerate(summaries, start=1)
        ),
        PALETTE[4],
    )
    figures.append(_trend("plot-trend-failures", "Failures", [failures], "failures", ""))
    health = [
        _trend_series(
            summaries,
            ("harness", "frame_lateness_ms", "p99"),
            "frame lateness p99 (ms)",
            PALETTE[0],
            1.0,
        ),
        _trend_series(
            summaries, ("harness", "receive_lag_ms", "p99"), "receive lag p99 (ms)", PALETTE[1], 1.0
        ),
    ]
    figures.append(_trend("plot-trend-harness", "Harness health", health, "ms", " ms"))
    return [f for f in figures if f]
