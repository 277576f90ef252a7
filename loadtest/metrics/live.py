"""The live Voice view's data (core: pure): tables, CSV and JSON from a summary of the run so far.

The master (or a standalone process) builds a run summary from the same merged histograms as
the final summary and ``/metrics`` (:meth:`loadtest.runtime.harness.Harness.summary` with
``final=False``) and hands it here with a :class:`LiveState` (runner state, users, each
worker's CPU). Nothing here reads a clock or a socket; :mod:`loadtest.runtime.webui` serves
the results on Locust's web UI and :mod:`loadtest.metrics.live_page` draws the page.

* :func:`voice_rows` / :func:`slo_rows` — the rows of the Voice and Voice SLO tabs Locust
  draws (its ``extendedTables``; columns :data:`VOICE_COLUMNS`, :data:`SLO_COLUMNS`);
* :func:`to_csv` — those tables as CSV; :func:`live_data` — everything as JSON;
* :func:`live_verdict` — the verdict so far ("waiting" before the first turn);
  :func:`harness_checks` — each harness limit against its value now (CPU per worker).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.metrics.report_plots import as_map, as_number
from loadtest.metrics.slo import NO_TURNS, SloConfig

__all__ = [
    "SLO_COLUMNS",
    "VOICE_COLUMNS",
    "HarnessCheck",
    "LiveState",
    "WorkerHealth",
    "harness_checks",
    "live_data",
    "live_verdict",
    "slo_rows",
    "to_csv",
    "voice_rows",
]

_STATS = ("count", "p50", "p90", "p95", "p99", "max")
VOICE_COLUMNS: tuple[Mapping[str, str], ...] = (
    {"key": "metric", "title": "Metric (ms)"},
    {"key": "scenario", "title": "Scenario"},
    *({"key": stat, "title": stat} for stat in _STATS),
)
"""Columns of the Voice table (Locust's ``extendedTables`` structure; also the CSV header)."""

SLO_COLUMNS: tuple[Mapping[str, str], ...] = (
    {"key": "check", "title": "Check"},
    {"key": "threshold", "title": "Threshold"},
    {"key": "actual", "title": "Actual"},
    {"key": "status", "title": "Status"},
)
"""Columns of the Voice SLO table: SLO checks, harness limits per worker, the verdict."""


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    """One load-generating process: its id, Locust state, users and current CPU (percent)."""

    name: str
    cpu_percent: float
    state: str = ""
    users: int = 0


@dataclass(frozen=True, slots=True)
class LiveState:
    """What the summary does not hold: the runner's state now, and the harness limits."""

    state: str
    users: int
    workers: tuple[WorkerHealth, ...]
    slo: SloConfig


def _number(value: object, digits: int = 1) -> float | int | str:
    number = as_number(value)
    if number is None:
        return ""
    return int(number) if float(number).is_integer() else round(number, digits)


def voice_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per latency metric (all scenarios), then one per metric and scenario."""
    rows = []
    for metric, stats in as_map(summary.get("metrics")).items():
        rows.append(_voice_row(str(metric), "all", as_map(stats)))
    for scenario, entry in as_map(summary.get("scenarios")).items():
        for metric, stats in as_map(entry).items():
            if isinstance(stats, Mapping):
                rows.append(_voice_row(str(metric), str(scenario), stats))
    return rows


def _voice_row(metric: str, scenario: str, stats: Mapping[str, Any]) -> dict[str, Any]:
    # "name" is the row's identity for Locust's table (its React key)
    row: dict[str, Any] = {"name": f"{metric}@{scenario}", "metric": metric, "scenario": scenario}
    row.update({stat: _number(stats.get(stat)) for stat in _STATS})
    return row


@dataclass(frozen=True, slots=True)
class HarnessCheck:
    """One harness limit against its value now (``actual`` is ``None`` before any sample)."""

    name: str
    unit: str  # " ms" or " %", as shown after the numbers
    actual: float | None
    limit: float

    @property
    def status(self) -> str:
        """``pass``, ``invalid`` (over the limit: the run cannot be judged) or ``no_data``."""
        if self.actual is None:
            return "no_data"
        return "invalid" if self.actual > self.limit else "pass"


def harness_checks(live: LiveState, summary: Mapping[str, Any]) -> list[HarnessCheck]:
    """Each harness limit against its value: frame lateness, receive lag, CPU per worker."""
    harness = as_map(summary.get("harness"))
    lateness = as_number(as_map(harness.get("frame_lateness_ms")).get("p99"))
    lag = as_number(as_map(harness.get("receive_lag_ms")).get("p99"))
    return [
        HarnessCheck("frame lateness p99", " ms", lateness, live.slo.max_lateness_p99_ms),
        HarnessCheck("receive lag p99", " ms", lag, live.slo.max_receive_lag_p99_ms),
        *(
            HarnessCheck(f"CPU of {w.name}", " %", w.cpu_percent, live.slo.max_worker_cpu_percent)
            for w in live.workers
        ),
    ]


def live_verdict(summary: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The live verdict and its reasons; "waiting" (not "invalid") before the first turn."""
    slo = as_map(summary.get("slo"))
    reasons = [str(r) for r in slo.get("reasons") or ()]
    if NO_TURNS in reasons:
        others = [r for r in reasons if r != NO_TURNS]
        return ("invalid" if others else "waiting"), others
    return str(slo.get("verdict") or "waiting"), reasons


def slo_rows(summary: Mapping[str, Any], live: LiveState) -> list[dict[str, Any]]:
    """The SLO checks with their live status, the harness limits (one CPU row per worker),
    then the verdict with the invalid-run reasons."""
    rows = []
    for slo in (as_map(c) for c in as_map(summary.get("slo")).get("checks") or ()):
        name = str(slo.get("name", "?"))
        rows.append(
            {
                "name": name,
                "check": name,
                "threshold": str(slo.get("threshold", "")),
                "actual": _number(slo.get("actual"), 4),
                "status": str(slo.get("status", "no_data")),
            }
        )
    for health in harness_checks(live, summary):
        rows.append(
            {
                "name": health.name,
                "check": f"harness: {health.name}",
                "threshold": f"< {health.limit:g}{health.unit}",
                "actual": _number(health.actual, 3),
                "status": health.status,
            }
        )
    verdict, reasons = live_verdict(summary)
    rows.append(
        {
            "name": "verdict",
            "check": "verdict",
            "threshold": "; ".join(reasons),
            "actual": "",
            "status": verdict,
        }
    )
    return rows


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[Mapping[str, str]]) -> str:
    """``rows`` as CSV with the ``columns``' titles as the header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c["title"] for c in columns])
    for row in rows:
        writer.writerow([row.get(c["key"], "") for c in columns])
    return out.getvalue()


def live_data(summary: Mapping[str, Any], live: LiveState) -> dict[str, Any]:
    """Everything the view shows, as JSON: the summary so far plus the live state."""
    verdict, reasons = live_verdict(summary)
    return {
        "live": {
            "state": live.state,
            "users": live.users,
            "verdict": verdict,
            "reasons": reasons,
            "workers": [
                {"name": w.name, "state": w.state, "users": w.users, "cpu_percent": w.cpu_percent}
                for w in live.workers
            ],
        },
        "voice_table": voice_rows(summary),
        "slo_table": slo_rows(summary, live),
        "summary": dict(summary),
    }
