"""Azure Monitor server metrics: what the poller has seen, as samples, summary and error counts
(core).

Call order: construct :class:`MonitorSeries` with the config; :meth:`~MonitorSeries.begin` at
the start of the run (points in one-minute buckets that start before it are shown live but left
out of the summary); after each query :meth:`~MonitorSeries.observe` its points, or
:meth:`~MonitorSeries.record_error` its failure cause; read :meth:`~MonitorSeries.latest`
(Prometheus), :meth:`~MonitorSeries.summary` (run summary JSON) and
:meth:`~MonitorSeries.errors` at any time. Not thread-safe: the edge serialises calls.

Azure Monitor revises the newest bucket while data arrives, so a later observation of a bucket
replaces the earlier one; each bucket counts once in the summary however often it was polled.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loadtest.metrics.azure_monitor_config import (
    Aggregation,
    AzureMonitorConfig,
    MetricSpec,
    resource_labels,
)

__all__ = ["ERROR_CAUSES", "METRIC_NAME", "MonitorSample", "MonitorSeries"]

#: The Prometheus gauge the exporter publishes from :meth:`MonitorSeries.latest`.
METRIC_NAME = "voice_loadtest_azure_monitor_value"
#: Causes :meth:`MonitorSeries.errors` counts, besides ``http_<status>`` for other statuses.
ERROR_CAUSES = ("auth", "throttled", "not_found", "network", "other")


@dataclass(frozen=True, slots=True)
class MonitorSample:
    """The newest non-null value of one metric of one resource.

    ``resource`` is the short label (see
    :func:`~loadtest.metrics.azure_monitor_config.resource_labels`); ``timestamp`` is the
    start of the one-minute bucket, in UTC.
    """

    resource: str
    metric: str
    aggregation: Aggregation
    value: float
    timestamp: datetime
    resource_id: str

    @property
    def timestamp_s(self) -> float:
        """``timestamp`` as Unix time in seconds."""
        return self.timestamp.timestamp()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _minute(moment: datetime) -> datetime:
    return _utc(moment).replace(second=0, microsecond=0)


class MonitorSeries:
    """Per resource, metric and aggregation: the newest value and the run's one-minute points."""

    def __init__(self, config: AzureMonitorConfig, *, since: datetime | None = None) -> None:
        self._labels = resource_labels(config.resource_ids)
        self._keys = [(rid, spec) for rid in config.resource_ids for spec in config.metrics]
        self._latest: dict[tuple[str, MetricSpec], tuple[datetime, float]] = {}
        self._points: dict[tuple[str, MetricSpec], dict[datetime, float]] = {
            key: {} for key in self._keys
        }
        self._since = None if since is None else _minute(since)
        self._errors: Counter[str] = Counter()

    def begin(self, since: datetime) -> None:
        """Mark the start of the run: the summary keeps buckets from ``since``'s minute on."""
        self._since = _minute(since)
        for points in self._points.values():
            for stamp in [s for s in points if s < self._since]:
                del points[stamp]

    def observe(
        self,
        resource_id: str,
        spec: MetricSpec,
        points: Iterable[tuple[datetime, float | None]],
    ) -> None:
        """Record ``(bucket start, value)`` points of one configured metric; nulls are skipped."""
        key = (resource_id, spec)
        if key not in self._points:
            raise ValueError(f"{spec} of {resource_id} is not configured")
        run_points = self._points[key]
        for stamp, value in points:
            if value is None or not math.isfinite(value):
                continue
            moment = _utc(stamp)
            newest = self._latest.get(key)
            if newest is None or moment >= newest[0]:
                self._latest[key] = (moment, float(value))
            if self._since is None or moment >= self._since:
                run_points[moment] = float(value)

    def record_error(self, cause: str) -> bool:
        """Count one failed query by ``cause``; true the first time this cause is seen."""
        self._errors[cause] += 1
        return self._errors[cause] == 1

    def latest(self) -> list[MonitorSample]:
        """The newest value per resource/metric/aggregation, in configuration order."""
        samples = []
        for key in self._keys:
            if key in self._latest:
                moment, value = self._latest[key]
                rid, spec = key
                samples.append(
                    MonitorSample(
                        self._labels[rid], spec.name, spec.aggregation, value, moment, rid
                    )
                )
        return samples

    def summary(self) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        """``{resource: {metric: {aggregation: {count, max, avg}}}}`` over the run.

        ``count`` is the number of one-minute buckets with a value; ``max`` and ``avg`` (mean
        of the bucket values) are ``None`` when it is 0. Every configured metric is listed.
        """
        out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        for key in self._keys:
            rid, spec = key
            values = list(self._points[key].values())
            stats: dict[str, Any] = {
                "count": len(values),
                "max": max(values) if values else None,
                "avg": math.fsum(values) / len(values) if values else None,
            }
            metrics = out.setdefault(self._labels[rid], {})
            metrics.setdefault(spec.name, {})[spec.aggregation.value] = stats
        return out

    def errors(self) -> dict[str, int]:
        """Failed queries by cause (``auth``, ``throttled``, ``not_found``, ``http_<status>``,
        ``network``, ``other``); causes never seen are absent."""
        return dict(sorted(self._errors.items()))
