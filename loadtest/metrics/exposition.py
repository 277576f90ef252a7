"""Prometheus metric families from the merged voice stats and the run state (core: pure).

A custom collector (:class:`VoiceCollector`) builds every family at scrape time from a
:class:`Snapshot` supplied by a callable, so nothing is copied into the client's global
registry and tests inject their own :class:`~prometheus_client.CollectorRegistry`.

Names follow Prometheus conventions: ``voice_loadtest_<what>_<base unit>``, one unit per
family (seconds, or a 0–1 ``_ratio``); latencies are histograms in seconds with fixed buckets
(:data:`LATENCY_BUCKETS_S`), counters end in ``_total``, and only a summary carries a
``quantile`` label. The output passes ``promtool check metrics``. Labels stay low-cardinality:
``target`` (the agent URL without query), ``scenario``, ``outcome``, ``error`` (stable error
names), Locust request ``name`` — never call or user ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from loadtest.metrics.histogram import Histogram
from loadtest.metrics.slo import SloConfig
from loadtest.metrics.voice_stats import COUNTERS, INBOUND_ANOMALIES, VoiceStats

__all__ = [
    "COUNTER_METRICS",
    "HISTOGRAM_METRICS",
    "LATENCY_BUCKETS_S",
    "LATENESS_BUCKETS_S",
    "OUTCOME_METRICS",
    "SHORT_BUCKETS_S",
    "AzureMonitorValue",
    "RequestRow",
    "Snapshot",
    "VoiceCollector",
    "target_label",
]

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    1.25,
    1.5,
    1.75,
    2.0,
    2.5,
    3.0,
    4.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
)
"""Voice latency buckets (s): 50–100 ms steps below 1 s, coarser up to 30 s."""

SHORT_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip
"""Buckets (s) for short intervals: connect time, greeting latency, agent audio gaps."""

LATENESS_BUCKETS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
"""Harness timing buckets (s): frame lateness and event-loop lag."""

HISTOGRAM_METRICS: Mapping[str, tuple[str, tuple[float, ...], str]] = {
    "ttfb_ms": (
        "voice_loadtest_ttfb_seconds",
        LATENCY_BUCKETS_S,
        "Agent answer latency: first agent audio after the caller's end of speech.",
    ),
    "barge_in_ms": (
        "voice_loadtest_barge_in_seconds",
        LATENCY_BUCKETS_S,
        "Barge-in latency: agent stop signal (or end of audio) after barge speech.",
    ),
    "greeting_ms": (
        "voice_loadtest_greeting_seconds",
        SHORT_BUCKETS_S,
        "First greeting audio after the call connected.",
    ),
    "connect_ms": ("voice_loadtest_connect_seconds", SHORT_BUCKETS_S, "WebSocket upgrade time."),
    "turn_ms": (
        "voice_loadtest_turn_duration_seconds",
        LATENCY_BUCKETS_S,
        "Turn duration: first caller frame until the answer was heard.",
    ),
    "talk_over_ms": (
        "voice_loadtest_talk_over_seconds",
        LATENCY_BUCKETS_S,
        "Agent audio the caller still heard after barging in.",
    ),
    "agent_gap_ms": (
        "voice_loadtest_agent_audio_gap_seconds",
        SHORT_BUCKETS_S,
        "Gaps between consecutive agent audio messages within an answer.",
    ),
    "frame_lateness_ms": (
        "voice_loadtest_frame_lateness_seconds",
        LATENESS_BUCKETS_S,
        "Harness health: caller frame send time minus its due time.",
    ),
    "receive_lag_ms": (
        "voice_loadtest_event_loop_lag_seconds",
        LATENESS_BUCKETS_S,
        "Harness health: event-loop wake-up delay on the workers.",
    ),
}


COUNTER_METRICS: Mapping[str, str] = {
    "calls": "voice_loadtest_calls",
    "frames_sent": "voice_loadtest_frames_sent",
    "frames_received": "voice_loadtest_frames_received",
    "reconnects": "voice_loadtest_reconnects",
    "stop_while_silent": "voice_loadtest_stops_while_silent",
}
"""Declared counter (:data:`~loadtest.metrics.voice_stats.COUNTERS`, whose help it takes) →
Prometheus counter labelled ``target`` (the client adds ``_total``)."""

OUTCOME_METRICS: Mapping[str, tuple[str, str, str]] = {
    "voice_loadtest_connects": (
        "connect_attempts",
        "calls_connected",
        "WebSocket connect attempts by outcome.",
    ),
    "voice_loadtest_barge_ins": ("barge_attempts", "barge_ok", "Barge-in attempts by outcome."),
}
"""Prometheus counter with ``outcome`` ok/failed → (attempts counter, ok counter, help).
``voice_loadtest_turns`` is the same per scenario, from ``turns`` and ``turns_ok``."""


def target_label(url: str) -> str:
    """The agent URL as a label: scheme://host:port/path, no query, fragment or userinfo."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class RequestRow:
    """Locust's live stats for one request name."""

    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    sum_ms: float = 0.0  # of every response time so far, as Locust totals it


@dataclass(frozen=True, slots=True)
class AzureMonitorValue:
    resource: str
    metric: str
    aggregation: str
    value: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scrape exposes (built by the edge from the runner and merged stats)."""

    stats: VoiceStats
    target: str = ""
    state: str = "ready"
    users: int = 0
    workers: Mapping[str, int] = field(default_factory=dict)
    worker_cpu_percent: Mapping[str, float] = field(default_factory=dict)
    requests: Sequence[RequestRow] = ()
    slo: SloConfig | None = None
    slo_verdict: str | None = None
    azure_monitor: Sequence[AzureMonitorValue] = ()
    azure_monitor_errors: Mapping[str, int] = field(default_factory=dict)
    workers_lost: int = 0  # load workers that went missing during the run
    calls_lost: int = 0  # calls in flight on them


_STATES = ("ready", "spawning", "running", "stopping", "stopped", "cleanup", "missing")


def _buckets(histogram: Histogram, bounds_s: Sequence[float]) -> list[tuple[str, float]]:
    counts = histogram.cumulative([b * 1000.0 for b in bounds_s])
    rows = [(f"{b:g}", float(n)) for b, n in zip(bounds_s, counts, strict=True)]
    rows.append(("+Inf", float(histogram.count)))
    return rows


def _histograms(snap: Snapshot) -> Iterator[Metric]:
    stats, target = snap.stats, snap.target
    for key, (name, bounds, doc) in HISTOGRAM_METRICS.items():
        scenarios = sorted(sc for (n, sc) in stats.by_scenario if n == key)
        if scenarios:
            family = HistogramMetricFamily(name, doc, labels=["target", "scenario"])
            for scenario in scenarios:
                h = stats.by_scenario[(key, scenario)]
                family.add_metric([target, scenario], _buckets(h, bounds), h.sum / 1000.0)
        else:
            family = HistogramMetricFamily(name, doc, labels=["target"])
            h = stats.histograms[key]
            family.add_metric([target], _buckets(h, bounds), h.sum / 1000.0)
        yield family


def _counters(snap: Snapshot) -> Iterator[Metric]:
    stats, target = snap.stats, snap.target
    for key, name in COUNTER_METRICS.items():
        family = CounterMetricFamily(name, _help(COUNTERS[key].help), labels=["target"])
        family.add_metric([target], float(stats.total(key)))
        yield family
    for name, (attempts, ok, doc) in OUTCOME_METRICS.items():
        family = CounterMetricFamily(name, doc, labels=["target", "outcome"])
        good = stats.total(ok)
        family.add_metric([target, "ok"], float(good))
        family.add_metric([target, "failed"], float(stats.total(attempts) - good))
        yield family
    turns = CounterMetricFamily(
        "voice_loadtest_turns",
        "Conversation turns by outcome.",
        labels=["target", "scenario", "outcome"],
    )
    answered = stats.per_scenario("turns_ok")
    for scenario, ended in stats.per_scenario("turns").items():
        good = answered.get(scenario, 0)
        turns.add_metric([target, scenario, "ok"], float(good))
        turns.add_metric([target, scenario, "failed"], float(ended - good))
    yield turns
    errors = CounterMetricFamily(
        "voice_loadtest_errors", "Failures by stable error name.", labels=["target", "error"]
    )
    for name, value in sorted(stats.errors.items()):
        errors.add_metric([target, name], float(value))
    yield errors
    anomalies = CounterMetricFamily(
        "voice_loadtest_inbound_anomalies",
        "What the callers noticed the agent doing wrong, by kind: "
        + "; ".join(f"{name}: {doc}" for name, doc in INBOUND_ANOMALIES.items())
        + ".",
        labels=["target", "kind"],
    )
    for name in INBOUND_ANOMALIES:
        anomalies.add_metric([target, name], float(stats.total(name)))
    yield anomalies
    for name, doc, value in (
        (
            "voice_loadtest_workers_lost",
            "Load workers that went missing during the run (harness, not agent, failures).",
            snap.workers_lost,
        ),
        (
            "voice_loadtest_worker_lost_calls",
            "Calls in flight on load workers that went missing (not counted as agent failures).",
            snap.calls_lost,
        ),
    ):
        family = CounterMetricFamily(name, doc, labels=["target"])
        family.add_metric([target], float(value))
        yield family


def _help(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _run_state(snap: Snapshot) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "voice_loadtest_run_state", "1 for the current run state.", labels=["state"]
    )
    for name in _STATES:
        state.add_metric([name], 1.0 if name == snap.state else 0.0)
    yield state
    users = GaugeMetricFamily(
        "voice_loadtest_users", "Simulated callers running.", labels=["target"]
    )
    users.add_metric([snap.target], float(snap.users))
    yield users
    workers = GaugeMetricFamily(
        "voice_loadtest_workers", "Connected workers by state.", labels=["state"]
    )
    for name, n in sorted(snap.workers.items()):
        workers.add_metric([name], float(n))
    yield workers
    cpu = GaugeMetricFamily(
        "voice_loadtest_worker_cpu_ratio",
        "CPU of each load worker (1 = one core busy).",
        labels=["worker"],
    )
    for worker, percent in sorted(snap.worker_cpu_percent.items()):
        cpu.add_metric([worker], percent / 100.0)
    yield cpu
    factor = GaugeMetricFamily(
        "voice_loadtest_realtime_factor", "Audio time streamed / wall time taken (1 = real time)."
    )
    due, actual = snap.stats.total("stream_due_us"), snap.stats.total("stream_actual_us")
    factor.add_metric([], due / actual if actual else 1.0)
    yield factor


def _locust(snap: Snapshot) -> Iterator[Metric]:
    labels = ["target", "name"]
    requests = CounterMetricFamily(
        "voice_loadtest_locust_requests", "Locust requests by name.", labels=labels
    )
    failures = CounterMetricFamily(
        "voice_loadtest_locust_failures", "Locust failures by name.", labels=labels
    )
    rps = GaugeMetricFamily(
        "voice_loadtest_locust_requests_per_second", "Current request rate by name.", labels=labels
    )
    # A summary: Locust's current percentiles (its recent window, as a summary's quantiles
    # are), with the count and sum of every response time so far.
    name = "voice_loadtest_locust_response_time_seconds"
    current = Metric(name, "Locust's response times by name: its current percentiles.", "summary")
    for row in snap.requests:
        key = [snap.target, row.name]
        requests.add_metric(key, float(row.requests))
        failures.add_metric(key, float(row.failures))
        rps.add_metric(key, row.rps)
        labelled = dict(zip(labels, key, strict=True))
        for quantile, value in (("0.5", row.p50_ms), ("0.95", row.p95_ms), ("0.99", row.p99_ms)):
            if value is not None:
                current.add_sample(name, {**labelled, "quantile": quantile}, value / 1000.0)
        current.add_sample(f"{name}_count", labelled, float(row.requests))
        current.add_sample(f"{name}_sum", labelled, row.sum_ms / 1000.0)
    yield from (requests, failures, rps, current)


def _slo(snap: Snapshot) -> Iterator[Metric]:
    if snap.slo is None:
        return
    seconds = GaugeMetricFamily(
        "voice_loadtest_slo_threshold_seconds",
        "The run's SLO thresholds of latency checks, for dashboards and alerts.",
        labels=["check", "level"],
    )
    ratios = GaugeMetricFamily(
        "voice_loadtest_slo_threshold_ratio",
        "The run's SLO thresholds of success-ratio checks (0-1), for dashboards and alerts.",
        labels=["check", "level"],
    )
    for check in snap.slo.checks:
        family, scale = (ratios, 1.0) if check.higher_is_better else (seconds, 0.001)
        family.add_metric([check.key, "target"], check.target * scale)
        family.add_metric([check.key, "acceptable"], check.acceptable * scale)
    yield from (seconds, ratios)
    if snap.slo_verdict is not None:
        verdict = GaugeMetricFamily(
            "voice_loadtest_slo_verdict", "1 for the final SLO verdict.", labels=["verdict"]
        )
        for name in ("pass", "warn", "fail", "invalid"):
            verdict.add_metric([name], 1.0 if name == snap.slo_verdict else 0.0)
        yield verdict


def _azure(snap: Snapshot) -> Iterator[Metric]:
    if not snap.azure_monitor and not snap.azure_monitor_errors:
        return
    values = GaugeMetricFamily(
        "voice_loadtest_azure_monitor_value",
        "Latest Azure Monitor value of the agent's resources.",
        labels=["resource", "metric", "aggregation"],
    )
    for v in snap.azure_monitor:
        values.add_metric([v.resource, v.metric, v.aggregation], v.value)
    yield values
    errors = CounterMetricFamily(
        "voice_loadtest_azure_monitor_errors",
        "Azure Monitor query failures by cause.",
        labels=["cause"],
    )
    for cause, n in sorted(snap.azure_monitor_errors.items()):
        errors.add_metric([cause], float(n))
    yield errors


class VoiceCollector(Collector):
    """Builds every family from ``snapshot()`` at scrape time."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        yield from _histograms(snap)
        yield from _counters(snap)
        yield from _run_state(snap)
        yield from _locust(snap)
        yield from _slo(snap)
        yield from _azure(snap)
