"""Azure Monitor server metrics: settings, query plan and time window (core).

:func:`parse_azure_monitor_config` turns the ``AZURE_MONITOR_*`` environment variables (a plain
mapping of names to raw strings; this module never reads ``os.environ``) into one frozen
:class:`AzureMonitorConfig`, or raises :class:`~loadtest.errors.ConfigError` naming the
variable, the value and what is allowed. An empty ``AZURE_MONITOR_RESOURCE_IDS`` turns the
feature off (:attr:`AzureMonitorConfig.enabled` is false).

The edge (:mod:`loadtest.metrics.azure_monitor`) then, every ``interval_s``:

1. runs each :class:`MetricQuery` of :func:`plan_queries` (one per resource and aggregation,
   at most 20 metric names each, the ARM limit), over :func:`query_timespan` at
   :data:`GRANULARITY` (one-minute buckets);
2. feeds the points to :class:`~loadtest.metrics.azure_monitor_series.MonitorSeries`.

:func:`resource_labels` gives each resource the short, low-cardinality name used as the
Prometheus ``resource`` label and as the key in the run summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from loadtest.errors import ConfigError

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_INTERVAL_S",
    "GRANULARITY",
    "MAX_METRICS_PER_QUERY",
    "MIN_INTERVAL_S",
    "MIN_WINDOW_S",
    "Aggregation",
    "AzureMonitorConfig",
    "MetricQuery",
    "MetricSpec",
    "parse_azure_monitor_config",
    "plan_queries",
    "query_timespan",
    "resource_labels",
]

DEFAULT_ENDPOINT = "https://management.azure.com"
DEFAULT_INTERVAL_S = 60
MIN_INTERVAL_S = 10
#: Platform metrics usually land in Azure Monitor one to three minutes late, so a window of
#: only 2 × a short interval would often hold nothing but nulls; never ask for less than this.
MIN_WINDOW_S = 300
#: Time grain of every query (ISO 8601): one-minute buckets, the finest most resources offer.
GRANULARITY = "PT1M"
#: ARM's limit on ``metricnames`` in one request.
MAX_METRICS_PER_QUERY = 20

_RESOURCE_EXAMPLE = (
    "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.App/containerApps/<name>"
)

_METRICS_EXAMPLE = "CpuPercentage,MemoryPercentage,Requests:Total"


class Aggregation(StrEnum):
    """An Azure Monitor aggregation type; the value is ARM's spelling (and the label value)."""

    AVERAGE = "Average"
    MINIMUM = "Minimum"
    MAXIMUM = "Maximum"
    TOTAL = "Total"
    COUNT = "Count"

    @property
    def field(self) -> str:
        """The data-point field that holds this aggregation (``average``, ``total``, …)."""
        return self.value.lower()


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One configured metric: its ARM name (as the user spelled it) and aggregation."""

    name: str
    aggregation: Aggregation = Aggregation.AVERAGE


@dataclass(frozen=True, slots=True)
class AzureMonitorConfig:
    """Settings of the Azure Monitor poller; build it with :func:`parse_azure_monitor_config`.

    ``interval_s`` is the poll period in seconds (the parser enforces at least
    :data:`MIN_INTERVAL_S`; tests may construct shorter ones directly). ``endpoint`` is the ARM
    base URL without a trailing slash; the token scope is ``endpoint + "/.default"``.
    """

    resource_ids: tuple[str, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()
    interval_s: float = DEFAULT_INTERVAL_S
    endpoint: str = DEFAULT_ENDPOINT

    @property
    def enabled(self) -> bool:
        """True when at least one resource is configured."""
        return bool(self.resource_ids)


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """One ARM metrics request: ``metric_names`` of ``resource_id`` with one aggregation."""

    resource_id: str
    metric_names: tuple[str, ...]
    aggregation: Aggregation

    @property
    def metricnames(self) -> str:
        """The ``metricnames`` query value (comma-separated)."""
        return ",".join(self.metric_names)


def _fail(env: str, raw: str, allowed: str) -> ConfigError:
    return ConfigError(f"{env}={raw!r} is invalid: {allowed}")


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _valid_resource_id(resource_id: str) -> bool:
    parts = resource_id.split("/")
    if len(parts) < 7 or parts[0] != "" or parts[1].lower() != "subscriptions":
        return False
    if any(not part or part != part.strip() for part in parts[1:]):
        return False
    lowered = [part.lower() for part in parts]
    if "providers" not in lowered:
        return False
    after = len(parts) - lowered.index("providers") - 1
    # namespace, then one or more type/name pairs
    return after >= 3 and after % 2 == 1


def _parse_resources(env: str, raw: str) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for item in _items(raw):
        resource_id = item.rstrip("/")
        if not resource_id.startswith("/"):
            resource_id = "/" + resource_id
        if not _valid_resource_id(resource_id):
            allowed = f"{item!r} is not an ARM resource ID; expected IDs like {_RESOURCE_EXAMPLE}"
            raise _fail(env, raw, allowed + ", separated by commas")
        seen.setdefault(resource_id.lower(), resource_id)  # ARM IDs are case-insensitive
    return tuple(seen.values())


def _parse_metrics(env: str, raw: str) -> tuple[MetricSpec, ...]:
    allowed = ", ".join(a.value for a in Aggregation)
    by_name = {a.value.lower(): a for a in Aggregation}
    specs: dict[tuple[str, Aggregation], MetricSpec] = {}
    for item in _items(raw):
        name, sep, agg_raw = item.rpartition(":")
        if not sep:
            name, agg_raw = item, Aggregation.AVERAGE.value
        name = name.strip()
        aggregation = by_name.get(agg_raw.strip().lower())
        if not name or aggregation is None:
            hint = f"{item!r} is not NAME or NAME:AGGREGATION; aggregations: {allowed}"
            raise _fail(env, raw, f"{hint} (default Average), e.g. {_METRICS_EXAMPLE}")
        specs.setdefault((name.lower(), aggregation), MetricSpec(name, aggregation))
    return tuple(specs.values())


def _parse_interval(env: str, raw: str) -> int:
    try:
        value: int | None = int(raw.strip())
    except ValueError:
        value = None
    if value is None or value < MIN_INTERVAL_S:
        raise _fail(env, raw, f"expected a whole number of seconds >= {MIN_INTERVAL_S}")
    return value


def _parse_endpoint(env: str, raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise _fail(env, raw, f"expected an https:// base URL such as {DEFAULT_ENDPOINT}")
    return url


def parse_azure_monitor_config(env: Mapping[str, str]) -> AzureMonitorConfig:
    """Parse the ``AZURE_MONITOR_*`` variables of ``env``; raise ConfigError if one is invalid.

    - ``AZURE_MONITOR_RESOURCE_IDS``: comma-separated ARM resource IDs; empty or unset = off.
    - ``AZURE_MONITOR_METRICS``: comma-separated ``Name`` or ``Name:Aggregation``
      (Average, Minimum, Maximum, Total, Count; default Average); required when resources are.
    - ``AZURE_MONITOR_INTERVAL_SEC``: poll period, whole seconds >= 10 (default 60).
    - ``AZURE_MONITOR_ENDPOINT``: ARM base URL (default ``https://management.azure.com``).

    Every variable that is set is validated even when the feature is off, so typos fail at
    start-up. Duplicate resources (compared case-insensitively) and metrics are dropped.
    """
    interval_raw = env.get("AZURE_MONITOR_INTERVAL_SEC", "").strip()
    interval_s = (
        _parse_interval("AZURE_MONITOR_INTERVAL_SEC", interval_raw)
        if interval_raw
        else DEFAULT_INTERVAL_S
    )
    endpoint_raw = env.get("AZURE_MONITOR_ENDPOINT", "").strip()
    endpoint = (
        _parse_endpoint("AZURE_MONITOR_ENDPOINT", endpoint_raw)
        if endpoint_raw
        else DEFAULT_ENDPOINT
    )
    metrics_raw = env.get("AZURE_MONITOR_METRICS", "")
    metrics = _parse_metrics("AZURE_MONITOR_METRICS", metrics_raw)
    resources = _parse_resources(
        "AZURE_MONITOR_RESOURCE_IDS", env.get("AZURE_MONITOR_RESOURCE_IDS", "")
    )
    if resources and not metrics:
        hint = f"required when AZURE_MONITOR_RESOURCE_IDS is set, e.g. {_METRICS_EXAMPLE}"
        raise _fail("AZURE_MONITOR_METRICS", metrics_raw, hint)
    return AzureMonitorConfig(
        resource_ids=resources, metrics=metrics, interval_s=interval_s, endpoint=endpoint
    )


def resource_labels(resource_ids: Iterable[str]) -> dict[str, str]:
    """Map each resource ID to a short label: its name (the last path segment).

    Names shared by several resources are qualified with their resource group
    (``group/name``); if even that is ambiguous, the full ID is the label.
    """
    ids = list(resource_ids)

    def short(resource_id: str, depth: int) -> str:
        parts = resource_id.strip("/").split("/")
        if depth == 1:
            return parts[-1]
        lowered = [p.lower() for p in parts]
        group = parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered else ""
        return f"{group}/{parts[-1]}" if group else resource_id

    labels: dict[str, str] = {}
    for resource_id in ids:
        for depth in (1, 2):
            label = short(resource_id, depth)
            if sum(short(other, depth).lower() == label.lower() for other in ids) == 1:
                break
        else:
            label = resource_id
        labels[resource_id] = label
    return labels


def plan_queries(config: AzureMonitorConfig) -> tuple[MetricQuery, ...]:
    """The requests one poll makes: per resource, one per aggregation (≤ 20 names each)."""
    by_aggregation: dict[Aggregation, list[str]] = {}
    for spec in config.metrics:
        by_aggregation.setdefault(spec.aggregation, []).append(spec.name)
    queries = []
    for resource_id in config.resource_ids:
        for aggregation, names in by_aggregation.items():
            for start in range(0, len(names), MAX_METRICS_PER_QUERY):
                chunk = tuple(names[start : start + MAX_METRICS_PER_QUERY])
                queries.append(MetricQuery(resource_id, chunk, aggregation))
    return tuple(queries)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def query_timespan(now: datetime, interval_s: float) -> str:
    """The ARM ``timespan`` (``start/end``, UTC) for a poll at ``now`` (an aware datetime).

    The window is twice the poll interval, but at least :data:`MIN_WINDOW_S` seconds.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    window_s = max(2.0 * interval_s, float(MIN_WINDOW_S))
    return f"{_iso(now - timedelta(seconds=window_s))}/{_iso(now)}"
