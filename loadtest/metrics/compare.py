"""Compare run summaries and gate on regressions (core: pure, summaries in, data out).

A run summary (:mod:`loadtest.metrics.summary`) is flattened into named *quantities*, the
names ``--fail-on`` uses::

    <metric>_<stat>_ms, <metric>_count      every entry of ``metrics`` (ttfb_p95_ms, …)
    <rate>                                  every entry of ``rates`` (a ratio 0..1)
    <count>, <count>.<name>                 every entry of ``counts`` (failures.<error>)
    <health>_<stat>_ms, <health>            every entry of ``harness``
    <quantity>@<scenario>                   the per-scenario entries of ``scenarios``

Every key the summary has is compared, so a key added to the summary later is compared too.
Summaries are read defensively: a missing or malformed part gives ``None`` ("n/a"), never an
exception.

Call order: :func:`compare` (baseline first) → :func:`parse_fail_on` → :func:`judge` →
:func:`verdict` for the exit code; :func:`baseline_block` is what ``run --baseline`` stores
under the summary's ``baseline`` key.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loadtest.errors import ConfigError
from loadtest.metrics.report_plots import as_map, as_number

__all__ = [
    "Comparison",
    "Finding",
    "Row",
    "Rule",
    "Run",
    "baseline_block",
    "compare",
    "judge",
    "parse_fail_on",
    "quantities",
    "verdict",
]

_RULE = re.compile(
    r"^\s*(?P<key>[A-Za-z0-9_.@:-]+)\s*(?P<op>[<>]=?)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+))\s*(?P<unit>%|ms|pt)?\s*$"
)
_LATENCY_STATS = ("count", "p50", "p90", "p95", "p99", "max", "mean")
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


@dataclass(frozen=True, slots=True)
class Rule:
    """``key op threshold unit``: the run regressed when its change ``op`` threshold."""

    text: str
    key: str
    op: str
    threshold: float
    unit: str  # "%" relative, "ms", "pt" (percentage points) or "" (the quantity's own unit)

    def fires(self, change: float) -> bool:
        return {
            ">": change > self.threshold,
            ">=": change >= self.threshold,
            "<": change < self.threshold,
            "<=": change <= self.threshold,
        }[self.op]


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule applied to one compared run: ``regression``, ``ok`` or ``no_data``."""

    run: str
    rule: str
    key: str
    base: float | None
    new: float | None
    change: float | None
    unit: str  # of ``change``: "%", "ms", "pt" or "" (the quantity's own)
    status: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run, "rule": self.rule, "key": self.key, "base": self.base,
            "new": self.new, "change": _finite(self.change), "unit": self.unit,
            "status": self.status,
        }  # fmt: skip


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def _unit_of(key: str, parent: str = "") -> str:
    if key.endswith("_ms"):
        return "ms"
    if key.endswith("_success") or parent == "rates":
        return "ratio"
    return ""


def _latencies(prefix: str, stats: object, group: str, suffix: str = "") -> Iterator[Row]:
    for stat, value in as_map(stats).items():
        key = f"{prefix}_count" if stat == "count" else f"{prefix}_{stat}_ms"
        unit = "count" if stat == "count" else "ms"
        yield Row(key + suffix, group, unit, (as_number(value),), 0 if stat == "count" else 1,
                  stat in _SHOWN_STATS)  # fmt: skip


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
            rows.append(Row(str(name), "harness", _unit_of(str(name)), (as_number(value),)))
    for scenario, entry in as_map(summary.get("scenarios")).items():
        for name, value in as_map(entry).items():
            if isinstance(value, Mapping):
                prefix = str(name).removesuffix("_ms")
                rows += _latencies(prefix, value, "scenario", f"@{scenario}")
            else:
                unit = _unit_of(str(name))
                rows.append(Row(f"{name}@{scenario}", "scenario", unit or "count",
                                (as_number(value),), -1 if unit == "ratio" else 0))  # fmt: skip
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
        Row(key, first.group, first.unit,
            tuple(found[key].values[0] if key in found else None for found in per_run),
            first.worse, first.shown)
        for key, first in first_seen.items()
    )  # fmt: skip
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


def parse_fail_on(text: str, units: Mapping[str, str] | None = None) -> tuple[Rule, ...]:
    """Rules from ``"ttfb_p95_ms>+10%,barge_in_p95_ms>+50ms,turn_success<-1pt"``.

    ``%`` is a relative change, ``ms`` an absolute one (``*_ms`` quantities only), ``pt``
    percentage points (success rates only), and a bare number a change in the quantity's own
    unit (counts). With ``units`` (quantity name → unit, e.g. from :attr:`Comparison.units`),
    an unknown name is an error that suggests the closest ones. Raises :class:`ConfigError`
    with one line.
    """
    rules = []
    for part in (p for p in text.split(",") if p.strip()):
        match = _RULE.match(part)
        if match is None:
            raise ConfigError(
                f"--fail-on: cannot read {part.strip()!r}; write NAME>+10% (relative), "
                "NAME>+50ms, NAME<-1pt (success rates) or NAME>+5 (counts)"
            )
        key, unit = match["key"], match["unit"] or ""
        if units is not None and key not in units:
            close = difflib.get_close_matches(key, list(units), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"--fail-on: no quantity named {key!r} in these summaries{hint}")
        own = units[key] if units is not None else _unit_of(key.split("@")[0])
        if unit == "ms" and own != "ms":
            raise ConfigError(f"--fail-on: {key} is not in milliseconds; use % or its own unit")
        if unit == "pt" and own != "ratio":
            raise ConfigError(f"--fail-on: {key} is not a success rate; pt is for rates")
        if unit == "" and own == "ratio":
            raise ConfigError(f"--fail-on: say pt (points) or % for the rate {key}")
        rules.append(Rule(part.strip(), key, match["op"], float(match["value"]), unit))
    if not rules:
        raise ConfigError("--fail-on: no rules given")
    return tuple(rules)


def judge(comparison: Comparison, rules: Sequence[Rule]) -> tuple[Finding, ...]:
    """Apply every rule to every compared run (not to the baseline)."""
    findings = []
    for index, run in enumerate(comparison.runs[1:], start=1):
        for rule in rules:
            row = comparison.row(rule.key)
            base = row.values[0] if row else None
            new = row.values[index] if row else None
            change = None
            if row is not None:
                change = row.change_pct(index) if rule.unit == "%" else row.change(index)
            status = "no_data" if change is None else "regression" if rule.fires(change) else "ok"
            unit = rule.unit or (row.unit if row and row.unit == "ms" else "")
            findings.append(
                Finding(run.label, rule.text, rule.key, base, new, change, unit, status)
            )
    return tuple(findings)


def verdict(comparison: Comparison, findings: Sequence[Finding], *, force: bool) -> int:
    """Exit code: 2 when a run is not comparable (unless ``force``), 1 on a regression, else 0."""
    if not force and any(comparison.not_comparable):
        return 2
    return 1 if any(f.status == "regression" for f in findings) else 0


def baseline_block(
    comparison: Comparison,
    findings: Sequence[Finding],
    *,
    fail_on: str,
    force: bool,
) -> dict[str, Any]:
    """The ``baseline`` key of a run's summary: the comparison of this run (``runs[1]``) with
    its baseline (``runs[0]``), with the baseline's distributions for the report's overlay."""
    base, _ = comparison.runs[0], comparison.runs[1]
    reasons = list(comparison.not_comparable[0])
    return {
        "file": base.label,
        "started_at": base.started_at or None,
        "comparable": not reasons,
        "reasons": reasons,
        "forced": force,
        "fail_on": fail_on or None,
        "findings": [f.as_dict() for f in findings],
        "regressions": [f.as_dict() for f in findings if f.status == "regression"],
        "exit_code": verdict(comparison, findings, force=force),
        "rows": [
            {
                "key": row.key, "group": row.group, "unit": row.unit,
                "base": row.values[0], "new": row.values[1],
                "change": _finite(row.change(1)), "change_pct": _finite(row.change_pct(1)),
                "shown": row.shown,
            }
            for row in comparison.rows
            if row.values[0] is not None or row.values[1] is not None
        ],
        "settings": [{"name": n, "base": v[0], "new": v[1]} for n, v in comparison.settings],
        "distributions": dict(as_map(base.summary.get("distributions"))),
        "distribution_bucket_ms": base.summary.get("distribution_bucket_ms"),
    }  # fmt: skip
