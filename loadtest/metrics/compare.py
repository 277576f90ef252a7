"""Compare run summaries side by side (core: pure, summaries in, data out).

A run summary (:mod:`loadtest.metrics.summary`) is flattened into named *quantities*, the
names ``--fail-on`` uses (:mod:`loadtest.metrics.compare_gate`)::

    <metric>_<stat>_ms, <metric>_count      every entry of ``metrics`` (ttfb_p95_ms, …)
    <rate>                                  every entry of ``rates`` (a ratio 0..1)
    <count>, <count>.<name>                 every entry of ``counts`` (failures.<error>)
    <health>_<stat>_ms, <health>            every entry of ``harness``
    <quantity>@<scenario>                   the per-scenario entries of ``scenarios``

Every key the summary has is compared, so a key added to the summary later is compared too.
Summaries are read defensively: a missing or malformed part gives ``None`` ("n/a"), never an
exception. :func:`compare` (baseline first) returns a :class:`Comparison`: every quantity per
run, the settings that differ, and why a run is not comparable with the baseline (it played
other scenarios or other audio).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loadtest.errors import ConfigError
from loadtest.metrics.report_plots import as_map, as_number

__all__ = ["Comparison", "Row", "Run", "compare", "quantities", "unit_of"]

_SHOWN_STATS = ("count", "p50", "p95", "p99")  # the side-by-side table; the gate takes all


@dataclass(frozen=True, slots=True)
class Run:
    """One summary and the name it is shown under (usually its file)."""

    label: str
    summary: Mapping[str, Any]

    @property
    def started_at(self) -> str:
        return str(as_map(self.summary.get("run")).get("started_at") or "")


@dataclass(frozen=True, slots=True)
class Row:
    """One quantity across the runs (``values[0]`` is the baseline's).

    ``unit`` is ``ms``, ``ratio`` (0..1; changes in percentage points), ``count`` or ``""``;
    ``worse`` is ``+1`` when a rise is bad (latencies, failures), ``-1`` when a fall is bad
    (success rates), ``0`` when neither; ``shown`` says whether the side-by-side table lists it.
    """

    key: str
    group: str
    unit: str
    values: tuple[float | None, ...]
    worse: int = 0
    shown: bool = True

    def change(self, index: int) -> float | None:
        """``values[index] − values[0]`` in the row's unit (points ×100 for ratios)."""
        base, new = self.values[0], self.values[index]
        if base is None or new is None:
            return None
        return (new - base) * (100.0 if self.unit == "ratio" else 1.0)

    def change_pct(self, index: int) -> float | None:
        """The relative change in % (``inf`` when the baseline is 0 and the run is not)."""
        base, new = self.values[0], self.values[index]
        if base is None or new is None:
            return None
        if base == 0:
            return 0.0 if new == 0 else math.copysign(math.inf, new)
        return (new - base) / abs(base) * 100.0


@dataclass(frozen=True, slots=True)
class Comparison:
    """The runs (baseline first), every quantity, the settings that differ and, per compared
    run, why it is not comparable with the baseline (empty: comparable)."""

    runs: tuple[Run, ...]
    rows: tuple[Row, ...]
    settings: tuple[tuple[str, tuple[str, ...]], ...]
    not_comparable: tuple[tuple[str, ...], ...]  # one entry per run after the baseline

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    @property
    def units(self) -> dict[str, str]:
        """Quantity name → unit, for :func:`parse_fail_on`."""
        return {row.key: row.unit for row in self.rows}


def unit_of(key: str) -> str:
    """The unit a quantity's name implies: ``*_ms`` latencies, ``*_success`` rates."""
    if key.endswith("_ms"):
        return "ms"
    return "ratio" if key.endswith("_success") else ""


def _latencies(prefix: str, stats: object, group: str, suffix: str = "") -> Iterator[Row]:
    for stat, value in as_map(stats).items():
        key = f"{prefix}_count" if stat == "count" else f"{prefix}_{stat}_ms"
        unit = "count" if stat == "count" else "ms"
        yield Row(
            key + suffix,
            group,
            unit,
            (as_number(value),),
            0 if stat == "count" else 1,
            stat in _SHOWN_STATS,
        )


def quantities(summary: Mapping[str, Any]) -> list[Row]:
    """Every comparable number of one summary, as one-value rows (see the module doc)."""
    rows: list[Row] = []
    for name, stats in as_map(summary.get("metrics")).items():
        rows += _latencies(str(name).removesuffix("_ms"), stats, "latency")
    for name, value in as_map(summary.get("rates")).items():
        rows.append(Row(str(name), "rate", "ratio", (as_number(value),), -1))
    for name, value in as_map(summary.get("counts")).items():
        if isinstance(value, Mapping):
            parts = {str(k): as_number(v) for k, v in value.items()}
            total = sum(v for v in parts.values() if v is not None)
            worse = 1 if name == "failures" else 0
            rows.append(Row(str(name), "count", "count", (float(total),), worse))
            rows += [Row(f"{name}.{k}", "count", "count", (v,), worse) for k, v in parts.items()]
        else:
            rows.append(Row(str(name), "count", "count", (as_number(value),)))
    for name, value in as_map(summary.get("harness")).items():
        if isinstance(value, Mapping):
            rows += _latencies(str(name).removesuffix("_ms"), value, "harness")
        else:
            rows.append(Row(str(name), "harness", unit_of(str(name)), (as_number(value),)))
    for scenario, entry in as_map(summary.get("scenarios")).items():
        for name, value in as_map(entry).items():
            if isinstance(value, Mapping):
                prefix = str(name).removesuffix("_ms")
                rows += _latencies(prefix, value, "scenario", f"@{scenario}")
            else:
                unit = unit_of(str(name))
                rows.append(
                    Row(
                        f"{name}@{scenario}",
                        "scenario",
                        unit or "count",
                        (as_number(value),),
                        -1 if unit == "ratio" else 0,
                    )
                )
    return rows


def _scenarios(summary: Mapping[str, Any]) -> set[str]:
    named = as_map(summary.get("run")).get("scenarios")
    if isinstance(named, list | tuple) and named:
        return {str(n) for n in named}
    return {str(n) for n in as_map(summary.get("scenarios"))}


def _audio(summary: Mapping[str, Any]) -> set[str]:
    digests = as_map(summary.get("run")).get("audio_cache")
    return {str(d) for d in digests} if isinstance(digests, list | tuple) else set()


def _why_not_comparable(base: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    reasons = []
    a, b = _scenarios(base), _scenarios(new)
    if a and b and a != b:
        reasons.append(
            f"different scenarios: the baseline played {', '.join(sorted(a))}; "
            f"this run played {', '.join(sorted(b))}"
        )
    a, b = _audio(base), _audio(new)
    if a and b and a != b:
        reasons.append(
            f"different audio: the baseline's cache {', '.join(sorted(a))}, "
            f"this run's {', '.join(sorted(b))}"
        )
    return tuple(reasons)


def _host(url: object) -> str:
    try:
        parts = urlsplit(str(url or ""))
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if host and parts.port else host
    except ValueError:
        return ""


def _shown(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "n/a"
    return str(value)


def _facts(summary: Mapping[str, Any]) -> dict[str, str]:
    """What a run was, for "settings that differ": the agent's host (never the whole URL:
    it may carry a token), users, workers, scenarios, audio cache and every shown setting."""
    run, settings = as_map(summary.get("run")), as_map(summary.get("settings"))
    facts = {
        "agent host": _host(run.get("target") or settings.get("WS_URL")) or "n/a",
        "users": _shown(run.get("users")),
        "workers": _shown(run.get("workers")),
        "scenarios": _shown(sorted(_scenarios(summary))),
        "audio cache": _shown(sorted(_audio(summary))),
    }
    for name, value in settings.items():
        if name != "WS_URL":
            facts[str(name)] = _shown(value)
    return facts


def compare(runs: Sequence[Run]) -> Comparison:
    """Side by side: ``runs[0]`` is the baseline, every other run is compared with it."""
    if len(runs) < 2:
        raise ConfigError("compare needs a baseline and at least one run to compare with it")
    per_run = [{r.key: r for r in quantities(run.summary)} for run in runs]
    first_seen: dict[str, Row] = {}
    for found in per_run:
        for key, row in found.items():
            first_seen.setdefault(key, row)
    rows = tuple(
        Row(
            key,
            first.group,
            first.unit,
            tuple(found[key].values[0] if key in found else None for found in per_run),
            first.worse,
            first.shown,
        )
        for key, first in first_seen.items()
    )
    facts = [_facts(run.summary) for run in runs]
    names = dict.fromkeys(name for f in facts for name in f)
    settings = tuple(
        (name, values)
        for name in names
        if len(set(values := tuple(f.get(name, "n/a") for f in facts))) > 1
    )
    base = runs[0].summary
    not_comparable = tuple(_why_not_comparable(base, run.summary) for run in runs[1:])
    return Comparison(tuple(runs), rows, settings, not_comparable)
