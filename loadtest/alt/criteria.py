"""SLO checks → Azure Load Testing fail criteria (core: pure mapping, no I/O).

ALT judges a run by *client-metric fail criteria* on the Locust request rows
(``Request: aggregate(metric) condition threshold``); a run fails when any criterion is true.
The harness reports each measurement as its own request name (``connect``, ``greeting``,
``ttfb``, ``barge_in``, ``turn``), so every SLO check maps onto one request row:

====================================  ==============================================
SLO check                             ALT criterion
====================================  ==============================================
``<metric>_<stat>_ms`` (latency)      ``<metric>: <stat>(response_time_ms) > T``
``connection_success`` (ratio)        ``connect: percentage(error) > 100·(1 − r)``
``turn_success`` (ratio)              ``turn: percentage(error) > 100·(1 − r)``
``barge_in_success`` (ratio)          ``barge_in: percentage(error) > 100·(1 − r)``
``harness`` limits                    not mapped (ALT shows engine health itself)
====================================  ==============================================

Which threshold: ALT has only pass/fail, so it mirrors the local *exit code*. With
``warn_exit_code: 0`` (default) a run fails locally only past ``acceptable``, so that is the
ALT threshold; with ``warn_exit_code: 1`` missing the ``target`` already fails, so the target
is used. Latency thresholds are whole milliseconds (ALT rejects decimals on
``response_time_ms``; a fractional threshold rounds up). ALT compares with a strict ``>``:
a value exactly on the threshold passes in ALT where the local gate counts it as missed.

Differences a reader should know (documented in ``docs/azure-load-testing.md``): ALT's
percentiles include failed samples (a ``ttfb`` timeout counts at the timeout), the local
histograms only successes; ALT pools all engines' samples like the local merge does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from loadtest.alt.limits import ALT_MAX_TEST_CRITERIA, RESPONSE_TIME_AGGREGATES
from loadtest.conversation.measure import Metric
from loadtest.errors import ConfigError
from loadtest.metrics.slo import Check, SloConfig

__all__ = ["ClientCriterion", "CriteriaMapping", "map_slo"]

_LATENCY = re.compile(r"^(?P<metric>[a-z_]+?)_(?P<stat>p50|p90|p95|p99|max)_ms$")
_RATE_REQUEST = {
    "connection_success": Metric.CONNECT.value,
    "turn_success": Metric.TURN.value,
    "barge_in_success": Metric.BARGE_IN.value,
}
_REQUESTS = frozenset(metric.value for metric in Metric)


def _number(value: float) -> str:
    """``3000`` for whole numbers, else up to two decimals (``2.5``)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value, 2):g}"


@dataclass(frozen=True, slots=True)
class ClientCriterion:
    """One ALT client-metric fail criterion: the run fails when it is true.

    Attributes:
        request: Locust request name it applies to (``None``: all requests together).
        aggregate: ``p95``, ``max``, ``percentage``… (one ALT supports for ``metric``).
        metric: ``response_time_ms`` (milliseconds) or ``error`` (percent 0–100).
        threshold: compared with a strict ``>``.
        source: the SLO check it came from, e.g. ``ttfb_p95_ms``.
    """

    request: str | None
    aggregate: str
    metric: str
    threshold: float
    source: str
    condition: str = ">"

    @property
    def expression(self) -> str:
        """``p95(response_time_ms) > 3000`` — the part after ``request:``."""
        return f"{self.aggregate}({self.metric}) {self.condition} {_number(self.threshold)}"

    def yaml_item(self) -> str | dict[str, str]:
        """The ``failureCriteria.clientMetrics`` list item: a string, or ``{request: expr}``."""
        return self.expression if self.request is None else {self.request: self.expression}

    def __str__(self) -> str:
        return self.expression if self.request is None else f"{self.request}: {self.expression}"


@dataclass(frozen=True, slots=True)
class CriteriaMapping:
    """The criteria for a test, and one line per SLO setting ALT cannot express."""

    criteria: tuple[ClientCriterion, ...]
    unmapped: tuple[str, ...]


def _fail_at(check: Check, slo: SloConfig) -> float:
    return check.target if slo.warn_exit_code == 1 else check.acceptable


def _criterion(check: Check, slo: SloConfig) -> ClientCriterion:
    fail_at = _fail_at(check, slo)
    if check.key in _RATE_REQUEST:
        error_percent = round(max(0.0, min(1.0, 1.0 - fail_at)) * 100.0, 2)
        return ClientCriterion(_RATE_REQUEST[check.key], "percentage", "error", error_percent,
                               check.key)  # fmt: skip
    match = _LATENCY.match(check.key)
    if match is None or match.group("metric") not in _REQUESTS:
        raise ConfigError(f"SLO check {check.key!r} has no Azure Load Testing equivalent")
    stat = match.group("stat")
    if stat not in RESPONSE_TIME_AGGREGATES:  # pragma: no cover - every SLO stat is supported
        raise ConfigError(f"SLO check {check.key!r}: ALT has no {stat} aggregate")
    return ClientCriterion(match.group("metric"), stat, "response_time_ms",
                           float(math.ceil(fail_at)), check.key)  # fmt: skip


def map_slo(slo: SloConfig) -> CriteriaMapping:
    """Map every check of ``slo`` to an ALT fail criterion (see the module docstring).

    Raises :class:`ConfigError` when a check has no ALT equivalent or there are more
    criteria than ALT allows per test.
    """
    criteria = tuple(_criterion(check, slo) for check in slo.checks)
    if len(criteria) > ALT_MAX_TEST_CRITERIA:
        raise ConfigError(
            f"{len(criteria)} SLO checks but Azure Load Testing allows {ALT_MAX_TEST_CRITERIA} "
            "fail criteria per test; switch some off with `<check>: null`"
        )
    unmapped = (
        f"harness limits (frame lateness p99 < {slo.max_lateness_p99_ms:g} ms, receive lag p99 < "
        f"{slo.max_receive_lag_p99_ms:g} ms, worker CPU < {slo.max_worker_cpu_percent:g} %) are "
        "not ALT criteria: check the run's Engine "
        "health tab (ALT calls an engine healthy below 75 % CPU)",
    )
    return CriteriaMapping(criteria, unmapped)
