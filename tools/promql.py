"""PromQL over the exporter's metrics (core: pure strings), shared by dashboards and alerts.

One place says how a percentile, a success ratio, an SLO threshold or an SLO status is asked
of Prometheus, so the Grafana panels (:mod:`tools.dashboards`) and the alert rules
(:mod:`tools.alerts`) cannot drift apart.

``matchers`` arguments are the inside of a label selector without braces, e.g.
``'target=~"$target",scenario=~"$scenario"'`` for dashboards (Grafana template variables) or
``""`` for alerts. ``window`` is a PromQL range such as ``"5m"`` or Grafana's
``"$__rate_interval"``; ``None`` means *run so far*: the exporter's histograms and counters
are totals since the master started, so the raw series are the run-to-date values the SLO
gate judges at the end.

The SLO thresholds come from the exporter's gauges ``voice_loadtest_slo_threshold_seconds``
(latency checks) and ``voice_loadtest_slo_threshold_ratio`` (success ratios), labelled
``{check,level}``, never from numbers copied here: one source of truth, the run's own
``--slo`` file. When several masters share one Prometheus, the loosest threshold applies
(``max`` for latencies, ``min`` for ratios); normally there is one.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "LATENCY_CHECKS",
    "RATIO_CHECKS",
    "join",
    "quantile",
    "ratio",
    "selector",
    "slo_status_latency",
    "slo_status_ratio",
    "threshold",
]

LATENCY_CHECKS: dict[str, str] = {
    "ttfb_p95_ms": "voice_loadtest_ttfb_seconds",
    "barge_in_p95_ms": "voice_loadtest_barge_in_seconds",
}
"""SLO latency check → histogram it is judged on (p95, seconds)."""

RATIO_CHECKS: dict[str, str] = {
    "connection_success": "voice_loadtest_connects_total",
    "turn_success": "voice_loadtest_turns_total",
}
"""SLO ratio check → counter with ``outcome="ok"|"failed"`` it is judged on."""


def join(*matchers: str) -> str:
    """Comma-join the non-empty matcher strings."""
    return ",".join(m for m in matchers if m)


def selector(metric: str, *matchers: str) -> str:
    """``metric{m1,m2}`` (or just ``metric`` when there are no matchers)."""
    inside = join(*matchers)
    return f"{metric}{{{inside}}}" if inside else metric


def _sum(labels: Sequence[str], inner: str) -> str:
    return f"sum by ({', '.join(labels)}) ({inner})" if labels else f"sum({inner})"


def quantile(
    q: float,
    histogram: str,
    matchers: str = "",
    *,
    window: str | None,
    by: Sequence[str] = (),
) -> str:
    """The ``q`` quantile (seconds) of ``histogram`` (its base name, without ``_bucket``),
    over ``window`` (rate) or over the run so far (``window=None``), one series per ``by``."""
    buckets = selector(f"{histogram}_bucket", matchers)
    inner = buckets if window is None else f"rate({buckets}[{window}])"
    return f"histogram_quantile({q:g}, sum by ({', '.join((*by, 'le'))}) ({inner}))"


def ratio(counter: str, matchers: str = "", *, window: str | None, by: Sequence[str] = ()) -> str:
    """Share (0..1) of ``counter`` samples with ``outcome="ok"``, over ``window`` or the run.

    NaN (no series) when nothing was counted in the window, so alerts stay quiet then.
    """
    ok = selector(counter, matchers, 'outcome="ok"')
    everything = selector(counter, matchers)
    if window is not None:
        ok, everything = f"increase({ok}[{window}])", f"increase({everything}[{window}])"
    return f"{_sum(by, ok)} / {_sum(by, everything)}"


def threshold(check: str, level: str) -> str:
    """The exported SLO threshold of ``check`` at ``level`` (``target`` | ``acceptable``)."""
    loosest, family = ("min", "ratio") if check in RATIO_CHECKS else ("max", "seconds")
    series = selector(
        f"voice_loadtest_slo_threshold_{family}", f'check="{check}"', f'level="{level}"'
    )
    return f"{loosest}({series})"


def slo_status_latency(check: str, matchers: str = "") -> str:
    """0 pass, 1 warn, 2 fail: the run-so-far p95 of ``check``'s histogram against its
    target and acceptable thresholds, as the gate judges (``actual >= target`` misses);
    no data until the first sample (not a misleading "pass")."""
    histogram = LATENCY_CHECKS[check]
    p95 = quantile(0.95, histogram, matchers, window=None)
    return (
        f"(({p95} >= bool on() {threshold(check, 'target')})"
        f" + ({p95} >= bool on() {threshold(check, 'acceptable')}))"
        f" and on() (sum({selector(histogram + '_count', matchers)}) > 0)"
    )


def slo_status_ratio(check: str, matchers: str = "") -> str:
    """0 pass, 1 warn, 2 fail: the run-so-far ratio of ``check`` against its thresholds, as
    the gate judges (``actual <= target`` misses, except a perfect 1.0); no data until the
    first attempt."""
    counter = RATIO_CHECKS[check]
    share = f"({ratio(counter, matchers, window=None)})"
    return (
        f"(({share} <= bool on() {threshold(check, 'target')})"
        f" + ({share} <= bool on() {threshold(check, 'acceptable')}))"
        f" * ({share} < bool 1)"
        f" and on() (sum({selector(counter, matchers)}) > 0)"
    )
