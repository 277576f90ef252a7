"""Counters of the agent simulator (core) and their Prometheus rendering.

:class:`AgentStats` is a plain object the sessions and the server increment on the hot path
(integer additions, no locks, no labels lookups in ``prometheus_client``).
:class:`AgentStatsCollector` turns it into metric families at scrape time, following
client_python's custom-collector pattern; register it on an injected ``CollectorRegistry``.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = ["LATENESS_BUCKETS_S", "AgentStats", "AgentStatsCollector"]

LATENESS_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
"""Upper bounds (seconds) of the reply-frame send-lateness histogram."""
_LATENESS_BOUNDS_NS = tuple(int(b * 1e9) for b in LATENESS_BUCKETS_S)
_PREFIX = "voice_loadtest_agent"


class AgentStats:
    """What the simulator did, since start. Not thread-safe for writers (one event loop writes);
    readers (the scrape thread) may see a slightly stale but consistent-enough view."""

    def __init__(self) -> None:
        self.active_connections = 0
        self.connections_total = 0
        self.turns_total = 0
        self.responses_total = 0
        self.barge_ins_total = 0
        self.stops_total = 0
        self.frames_sent_total = 0
        self.inbound_frames_total = 0
        self.faults: Counter[str] = Counter()
        self.bad_inputs: Counter[str] = Counter()
        self.inbound_messages: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.loop_lag_s = 0.0
        self.loop_lag_max_s = 0.0
        self._lateness_counts = [0] * (len(_LATENESS_BOUNDS_NS) + 1)
        self._lateness_sum_ns = 0

    def record_lateness(self, lateness_ns: int) -> None:
        """One reply frame left ``lateness_ns`` after its due time (negative counts as 0)."""
        lateness_ns = max(lateness_ns, 0)
        self._lateness_counts[bisect.bisect_left(_LATENESS_BOUNDS_NS, lateness_ns)] += 1
        self._lateness_sum_ns += lateness_ns

    def record_loop_lag(self, lag_s: float) -> None:
        self.loop_lag_s = lag_s
        self.loop_lag_max_s = max(self.loop_lag_max_s, lag_s)

    @property
    def lateness_sum_s(self) -> float:
        return self._lateness_sum_ns / 1e9

    @property
    def lateness_count(self) -> int:
        return sum(self._lateness_counts)

    def lateness_buckets(self) -> list[tuple[float, int]]:
        """Cumulative ``(upper bound s, count)`` pairs, ending with ``(inf, total)``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip(
            (*LATENESS_BUCKETS_S, float("inf")), self._lateness_counts, strict=True
        ):
            running += count
            out.append((bound, running))
        return out

    def lateness_quantile_s(self, q: float) -> float:
        """Upper bucket bound (seconds) below which a fraction ``q`` of frames were sent."""
        total = self.lateness_count
        if total == 0:
            return 0.0
        for bound, cumulative in self.lateness_buckets():
            if cumulative >= q * total:
                return bound
        return float("inf")  # pragma: no cover - the last bucket always reaches total


class AgentStatsCollector(Collector):
    """Prometheus collector over an :class:`AgentStats` (names ``voice_loadtest_agent_*``)."""

    def __init__(self, stats: AgentStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield GaugeMetricFamily(
            f"{_PREFIX}_active_connections", "Open WebSocket calls.", value=s.active_connections
        )
        plain = (
            ("connections", "Accepted WebSocket calls.", s.connections_total),
            ("turns", "Caller turns whose end was detected.", s.turns_total),
            ("responses", "Replies (and greetings) whose first frame was sent.", s.responses_total),
            ("barge_ins", "Caller speech detected over a playing reply.", s.barge_ins_total),
            ("stops", "StopAudio messages sent.", s.stops_total),
            ("frames_sent", "Reply audio frames sent.", s.frames_sent_total),
            ("inbound_frames", "Caller AudioData messages received.", s.inbound_frames_total),
        )
        for name, doc, value in plain:
            yield CounterMetricFamily(f"{_PREFIX}_{name}", doc, value=value)
        labelled = (
            ("faults_injected", "Faults injected, by kind.", "kind", s.faults),
            ("bad_inputs", "Caller messages that break the protocol.", "kind", s.bad_inputs),
            ("inbound_messages", "Caller messages, by message kind.", "kind", s.inbound_messages),
            ("closes", "Closed calls, by close code (1006: no close frame).", "code", s.closes),
        )
        for name, doc, label, counts in labelled:
            family = CounterMetricFamily(f"{_PREFIX}_{name}", doc, labels=[label])
            for kind, count in sorted(counts.items()):
                family.add_metric([kind], count)
            yield family
        yield GaugeMetricFamily(
            f"{_PREFIX}_event_loop_lag_seconds",
            "Last measured event-loop lag (timer overshoot).",
            value=s.loop_lag_s,
        )
        yield GaugeMetricFamily(
            f"{_PREFIX}_event_loop_lag_max_seconds",
            "Largest event-loop lag since start.",
            value=s.loop_lag_max_s,
        )
        yield HistogramMetricFamily(
            f"{_PREFIX}_frame_lateness_seconds",
            "Send time of reply frames minus their due time.",
            buckets=[(_bucket_label(b), c) for b, c in s.lateness_buckets()],
            sum_value=s.lateness_sum_s,
        )


def _bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
