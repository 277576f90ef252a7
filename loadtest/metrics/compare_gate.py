"""The regression gate over a comparison (core: pure): ``--fail-on`` rules and exit codes.

Call order: :func:`~loadtest.metrics.compare.compare` (baseline first) →
:func:`parse_fail_on` (with :attr:`Comparison.units`, so a misspelt name is refused) →
:func:`judge` → :func:`verdict` for the exit code. :func:`baseline_block` is what
``run --baseline`` stores under the summary's ``baseline`` key.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.errors import ConfigError
from loadtest.metrics.compare import Comparison, unit_of
from loadtest.metrics.report_plots import as_map

__all__ = ["Finding", "Rule", "baseline_block", "judge", "parse_fail_on", "verdict"]

_RULE = re.compile(
    r"^\s*(?P<key>[A-Za-z0-9_.@:-]+)\s*(?P<op>[<>]=?)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+))\s*(?P<unit>%|ms|pt)?\s*$"
)


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
            "run": self.run,
            "rule": self.rule,
            "key": self.key,
            "base": self.base,
            "new": self.new,
            "change": _finite(self.change),
            "unit": self.unit,
            "status": self.status,
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


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
        own = units[key] if units is not None else unit_of(key.split("@")[0])
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
                "key": row.key,
                "group": row.group,
                "unit": row.unit,
                "base": row.values[0],
                "new": row.values[1],
                "change": _finite(row.change(1)),
                "change_pct": _finite(row.change_pct(1)),
                "shown": row.shown,
            }
            for row in comparison.rows
            if row.values[0] is not None or row.values[1] is not None
        ],
        "settings": [{"name": n, "base": v[0], "new": v[1]} for n, v in comparison.settings],
        "distributions": dict(as_map(base.summary.get("distributions"))),
        "distribution_bucket_ms": base.summary.get("distribution_bucket_ms"),
    }
