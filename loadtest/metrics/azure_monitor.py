"""Azure Monitor server metrics poller (edge): ARM metrics of the agent's Azure resources.

Every ``config.interval_s`` a background thread (a greenlet once gevent has monkey-patched the
process, as on the Locust master: it only waits on a ``threading.Event`` and on sockets) runs
the :func:`~loadtest.metrics.azure_monitor_config.plan_queries` requests against the ARM
metrics API (``GET {resourceId}/providers/Microsoft.Insights/metrics``) and hands the points to
a :class:`~loadtest.metrics.azure_monitor_series.MonitorSeries`. The first poll runs at
:meth:`AzureMonitorPoller.start`.

Client: ``MonitorManagementClient`` from ``azure-mgmt-monitor``, the package Azure names as
the home of ``MetricsQueryClient``'s resource metrics queries since ``azure-monitor-query`` 2.0
removed that client; it talks to ARM, so ``endpoint`` can point elsewhere (sovereign clouds,
tests) and the identity only needs *Monitoring Reader* on each resource. The credential
defaults to ``DefaultAzureCredential`` (environment, AKS workload identity, managed identity,
Azure CLI, …).

Failures never stop the poller. Each is counted by cause (:func:`classify_error`) and the
first of each cause is logged as a warning on ``voice-loadtest.azure_monitor``; later ones are
only counted. azure.identity warns about every failed token request itself: after the first
``auth`` failure its warnings from the polling thread are dropped. Throttling (HTTP 429) ends
the current round, and the next one waits at least the ``Retry-After`` the service asked for.
SDK retries are off (the poll loop is the retry) and per-request HTTP logs go to DEBUG.
Tokens are never logged.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import DefaultAzureCredential
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.monitor.models import Metric, Response

from loadtest.metrics.azure_monitor_config import (
    GRANULARITY,
    AzureMonitorConfig,
    MetricQuery,
    MetricSpec,
    plan_queries,
    query_timespan,
    resource_labels,
)
from loadtest.metrics.azure_monitor_series import MonitorSample, MonitorSeries

__all__ = ["AzureMonitorPoller", "classify_error"]

log = logging.getLogger("voice-loadtest.azure_monitor")

#: The longest ``Retry-After`` honoured, in seconds.
_MAX_RETRY_AFTER_S = 600.0

_HINTS = {
    "auth": "the identity needs the Monitoring Reader role on the resource",
    "no_token": "no token could be had: set up workload identity (AKS), a managed identity, "
    "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or az login",
    "throttled": "ARM is throttling metric reads; this round is skipped, raise "
    "AZURE_MONITOR_INTERVAL_SEC if it persists",
    "not_found": "check AZURE_MONITOR_RESOURCE_IDS",
    "network": "check AZURE_MONITOR_ENDPOINT and the network path to it",
}


def classify_error(exc: BaseException) -> str:
    """The cause a failed query is counted under.

    ``auth`` (401, 403, or no token could be had), ``throttled`` (429), ``not_found`` (404),
    ``http_<status>`` (any other HTTP status), ``network`` (no response: DNS, connect, TLS,
    timeout) or ``other``.
    """
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return "auth"
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return "not_found"
    if status == 429:
        return "throttled"
    if isinstance(exc, HttpResponseError) and isinstance(status, int):
        return f"http_{status}"
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return "network"
    return "other"


def _describe(exc: BaseException, limit: int = 500) -> str:
    """One line about ``exc``: ARM's error code and message when there is one."""
    error = getattr(exc, "error", None)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, HttpResponseError) and error is not None and error.message:
        text = f"HTTP {status} {error.code}: {error.message}"
    else:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        text = lines[0] if lines else type(exc).__name__
    text = re.sub(r"\s+", " ", text).strip().rstrip(".")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after_s(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    raw = response.headers.get("Retry-After") if response is not None else None
    try:
        return min(max(float(raw), 0.0), _MAX_RETRY_AFTER_S) if raw else None
    except ValueError:  # an HTTP-date: rare for ARM; the next interval will do
        return None


class _RepeatedIdentityWarnings(logging.Filter):
    """Drops azure.identity's own warnings about failed token requests made while polling, once
    the first ``auth`` failure has been reported (azure.identity repeats them on every request;
    the first, with its details per credential, is kept)."""

    def __init__(self) -> None:
        super().__init__()
        self.polling_thread: int | None = None
        self._loggers: list[logging.Logger] = []

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING or record.thread != self.polling_thread

    def attach(self) -> None:
        # azure.identity creates a logger per module, some lazily: attach to all there are now.
        for name in list(logging.Logger.manager.loggerDict):
            if name == "azure.identity" or name.startswith("azure.identity."):
                logger = logging.getLogger(name)
                if self not in logger.filters:
                    logger.addFilter(self)
                    self._loggers.append(logger)

    def detach(self) -> None:
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers.clear()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AzureMonitorPoller:
    """Polls Azure Monitor for ``config`` in a background thread; thread-safe to read.

    ``credential`` is any azure-core ``TokenCredential`` (default: a ``DefaultAzureCredential``
    the poller owns and closes); ``connection_verify`` is azure-core's TLS setting (``True``,
    or a CA bundle path); ``timeout_s`` bounds connecting and reading each request; ``clock``
    returns the current aware UTC time (the query window ends there).

    Call order: :meth:`start` (first poll at once, then every ``interval_s``), read
    :meth:`latest` / :meth:`summary` / :meth:`errors` at any time, :meth:`close` at the end
    (or use it as a context manager). :meth:`poll_once` runs one round in the caller's thread.
    """

    def __init__(
        self,
        config: AzureMonitorConfig,
        *,
        credential: TokenCredential | None = None,
        connection_verify: bool | str = True,
        timeout_s: float = 30.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not config.enabled:
            raise ValueError("AzureMonitorPoller needs at least one resource ID")
        self._config = config
        self._queries = plan_queries(config)
        self._labels = resource_labels(config.resource_ids)
        self._clock = clock
        self._owned_credential: DefaultAzureCredential | None = None
        if credential is None:
            credential = self._owned_credential = DefaultAzureCredential()
        # Only resource-scoped operations are used; the subscription ID is a required formality.
        subscription_id = config.resource_ids[0].split("/")[2]
        self._client = MonitorManagementClient(
            credential,
            subscription_id,
            base_url=config.endpoint,
            credential_scopes=[f"{config.endpoint}/.default"],
            connection_verify=connection_verify,
            connection_timeout=timeout_s,
            read_timeout=timeout_s,
            retry_total=0,
            # azure-core logs every request at INFO; Locust's log is for the load test.
            http_logging_level=logging.DEBUG,
        )
        self._lock = threading.Lock()
        self._series = MonitorSeries(config)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_after_s: float | None = None
        self._identity_filter = _RepeatedIdentityWarnings()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Mark the run start and poll in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        with self._lock:
            self._series.begin(self._clock())
        log.info(
            "Azure Monitor: polling %d resource(s) for %d metric(s) every %g s",
            len(self._config.resource_ids),
            len(self._config.metrics),
            self._config.interval_s,
        )
        self._thread = threading.Thread(
            target=self._run, name="voice-loadtest-azure-monitor", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        """True while the background thread is polling."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop.is_set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop polling; wait up to ``timeout_s`` for a request in flight to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def close(self) -> None:
        """Stop, then release the HTTP session and the credential this poller created."""
        self.stop()
        self._identity_filter.detach()
        if self._thread is not None and self._thread.is_alive():
            return  # a request is still in flight; the daemon thread dies with the process
        self._client.close()
        if self._owned_credential is not None:
            self._owned_credential.close()

    def __enter__(self) -> AzureMonitorPoller:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- results ---------------------------------------------------------------------------

    def latest(self) -> list[MonitorSample]:
        """The newest value per resource/metric/aggregation (for the Prometheus exporter)."""
        with self._lock:
            return self._series.latest()

    def summary(self) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        """``{resource: {metric: {aggregation: {count, max, avg}}}}`` over the run."""
        with self._lock:
            return self._series.summary()

    def errors(self) -> dict[str, int]:
        """Failed queries by cause (see :func:`classify_error`)."""
        with self._lock:
            return self._series.errors()

    # -- polling ---------------------------------------------------------------------------

    def poll_once(self) -> None:
        """Run every query of one round; failures are counted, never raised."""
        timespan = query_timespan(self._clock(), self._config.interval_s)
        self._identity_filter.polling_thread = threading.get_ident()
        self._retry_after_s = None
        for query in self._queries:
            try:
                response = self._client.metrics.list(
                    query.resource_id.lstrip("/"),
                    timespan=timespan,
                    interval=GRANULARITY,
                    metricnames=query.metricnames,
                    aggregation=query.aggregation.value,
                )
            except Exception as exc:
                cause = classify_error(exc)
                self._failed(cause, query.resource_id, exc)
                if cause == "throttled":
                    # ARM throttles per identity and subscription: the rest would fail too.
                    self._retry_after_s = _retry_after_s(exc)
                    break
                continue
            self._record(query, response)

    def _record(self, query: MetricQuery, response: Response) -> None:
        wanted = {name.lower(): name for name in query.metric_names}
        for metric in response.value or []:
            name = wanted.get((metric.name.value or "").lower()) if metric.name else None
            if name is None:
                continue
            if metric.error_code not in (None, "Success"):
                detail = f"metric {name}: {metric.error_code} {metric.error_message or ''}"
                self._failed("other", query.resource_id, RuntimeError(detail))
                continue
            spec = MetricSpec(name, query.aggregation)
            with self._lock:
                self._series.observe(query.resource_id, spec, _points(metric, spec))

    def _failed(self, cause: str, resource_id: str, exc: BaseException) -> None:
        with self._lock:
            first = self._series.record_error(cause)
        if cause == "auth":
            self._identity_filter.attach()
        if first:
            no_token = cause == "auth" and getattr(exc, "status_code", None) is None
            hint = _HINTS.get("no_token" if no_token else cause, "")
            log.warning(
                "Azure Monitor: query for %s failed (%s): %s%s. Further %r errors are counted "
                "(see the run summary), not logged.",
                self._labels.get(resource_id, resource_id),
                cause,
                _describe(exc),
                f"; {hint}" if hint else "",
                cause,
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # a bug must not end the polling either
                self._failed("other", "(round)", exc)
            wait_s = max(self._config.interval_s, self._retry_after_s or 0.0)
            self._stop.wait(wait_s)


def _points(metric: Metric, spec: MetricSpec) -> list[tuple[datetime, float | None]]:
    # Without a $filter ARM returns a single series, aggregated over all dimensions.
    if not metric.timeseries:
        return []
    field = spec.aggregation.field
    return [(point.time_stamp, getattr(point, field)) for point in metric.timeseries[0].data or []]
