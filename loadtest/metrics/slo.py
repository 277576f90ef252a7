"""The SLO gate (core): judge a run summary against targets; the verdict is the exit code.

Verdicts and exit codes:

* ``pass`` (0) — every check meets its target;
* ``warn`` (0, or 1 with ``warn_exit_code: 1``) — every check is at least *acceptable*, or
  the run lost load workers on the way (the checks pass on what was measured, but calls
  were lost, so the run is not clean: ``warnings`` says which);
* ``fail`` (1) — a check misses even its acceptable threshold;
* ``invalid`` (2) — the run cannot be judged: no turns were measured, or the load generator
  itself was saturated (frame lateness p99, receive lag p99 or worker CPU over the harness
  limits), so slow numbers may be the harness's, not the agent's.

The defaults, and the file that overrides them (YAML)::

    ttfb_p95_ms:        {target: 2000, acceptable: 3000}
    barge_in_p95_ms:    {target: 500,  acceptable: 1000}
    connection_success: {target: 0.98, acceptable: 0.95}
    turn_success:       {target: 0.95, acceptable: 0.90}
    harness:            {max_lateness_p99_ms: 20, max_receive_lag_p99_ms: 20,
                         max_worker_cpu_percent: 90}
    warn_exit_code: 0

Any latency percentile check can be added the same way: ``<metric>_<stat>_ms`` where metric
is one of ttfb, barge_in, greeting, connect, turn and stat one of p50, p90, p95, p99, max.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from loadtest.errors import ConfigError

__all__ = [
    "DEFAULT_SLO",
    "NO_TURNS",
    "Check",
    "CheckResult",
    "SloConfig",
    "SloResult",
    "Verdict",
    "evaluate",
    "parse_slo",
]

NO_TURNS = "no turns were measured (agent unreachable, or the run was too short); nothing to judge"
"""The invalid-run reason of a run without turns (a live view shows it as "waiting")."""

_LATENCY_KEY = re.compile(r"^(ttfb|barge_in|greeting|connect|turn)_(p50|p90|p95|p99|max)_ms$")
_RATE_KEYS = ("connection_success", "turn_success", "barge_in_success")


class Verdict(enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold. ``key`` is e.g. ``ttfb_p95_ms`` (lower is better) or ``turn_success``
    (a ratio 0..1, higher is better)."""

    key: str
    target: float
    acceptable: float

    @property
    def higher_is_better(self) -> bool:
        return self.key in _RATE_KEYS

    def status(self, actual: float) -> str:
        if self.higher_is_better:
            if actual > self.target or actual == 1.0 == self.target:
                return "pass"
            return "warn" if actual > self.acceptable else "fail"
        if actual < self.target:
            return "pass"
        return "warn" if actual < self.acceptable else "fail"

    def describe(self) -> str:
        op = ">" if self.higher_is_better else "<"
        return f"{op} {self.target:g} (acceptable {op} {self.acceptable:g})"


@dataclass(frozen=True, slots=True)
class SloConfig:
    checks: tuple[Check, ...]
    max_lateness_p99_ms: float = 20.0
    max_receive_lag_p99_ms: float = 20.0
    max_worker_cpu_percent: float = 90.0
    warn_exit_code: int = 0


DEFAULT_SLO = SloConfig(
    checks=(
        Check("ttfb_p95_ms", 2000.0, 3000.0),
        Check("barge_in_p95_ms", 500.0, 1000.0),
        Check("connection_success", 0.98, 0.95),
        Check("turn_success", 0.95, 0.90),
    )
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    threshold: str
    actual: float | None
    status: str  # pass | warn | fail | no_data

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "actual": self.actual,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class SloResult:
    """``reasons`` say why a run is invalid; ``warnings`` why a passing run is only ``warn``."""

    verdict: Verdict
    checks: tuple[CheckResult, ...]
    reasons: tuple[str, ...]
    exit_code: int
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "checks": [c.as_dict() for c in self.checks],
        }


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {value!r} is not a number")
    return float(value)


_HARNESS_LIMITS = ("max_lateness_p99_ms", "max_receive_lag_p99_ms", "max_worker_cpu_percent")


def parse_slo(text: str, *, source: str, base: SloConfig = DEFAULT_SLO) -> SloConfig:
    """Overlay the YAML document ``text`` on ``base``; errors name ``source`` and the key."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: malformed YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping of checks")
    checks = {c.key: c for c in base.checks}
    config = base
    for key, value in doc.items():
        where = f"{source}: {key}"
        if key == "harness":
            if not isinstance(value, dict) or set(value) - set(_HARNESS_LIMITS):
                raise ConfigError(f"{where}: expected {', '.join(_HARNESS_LIMITS)}")
            limits = {name: _number(v, f"{where}.{name}") for name, v in value.items()}
            config = replace(
                config,
                max_lateness_p99_ms=limits.get("max_lateness_p99_ms", config.max_lateness_p99_ms),
                max_receive_lag_p99_ms=limits.get(
                    "max_receive_lag_p99_ms", config.max_receive_lag_p99_ms
                ),
                max_worker_cpu_percent=limits.get(
                    "max_worker_cpu_percent", config.max_worker_cpu_percent
                ),
            )
        elif key == "warn_exit_code":
            if value not in (0, 1):
                raise ConfigError(f"{where}: must be 0 or 1")
            config = replace(config, warn_exit_code=int(value))
        elif _LATENCY_KEY.match(str(key)) or key in _RATE_KEYS:
            if value is None:  # `ttfb_p95_ms: null` switches a check off
                checks.pop(key, None)
                continue
            if not isinstance(value, dict) or "target" not in value:
                raise ConfigError(f"{where}: expected {{target: N, acceptable: N}} or null")
            target = _number(value["target"], f"{where}.target")
            acceptable = _number(value.get("acceptable", target), f"{where}.acceptable")
            check = Check(str(key), target, acceptable)
            worse = acceptable < target if check.higher_is_better else acceptable > target
            if acceptable != target and not worse:
                raise ConfigError(f"{where}: acceptable must be looser than target")
            checks[str(key)] = check
        else:
            raise ConfigError(
                f"{where}: unknown key (latency checks look like ttfb_p95_ms; rates are "
                f"{', '.join(_RATE_KEYS)}; also harness, warn_exit_code)"
            )
    return replace(config, checks=tuple(checks.values()))


def _actual(summary: Mapping[str, Any], key: str) -> float | None:
    if key in _RATE_KEYS:
        value = summary.get("rates", {}).get(key)
    else:
        match = _LATENCY_KEY.match(key)
        assert match is not None
        stats = summary.get("metrics", {}).get(f"{match.group(1)}_ms", {})
        value = stats.get(match.group(2)) if stats.get("count") else None
    return None if value is None else float(value)


def evaluate(summary: Mapping[str, Any], config: SloConfig = DEFAULT_SLO) -> SloResult:
    """Judge ``summary`` (the run-summary dict: ``metrics``, ``rates``, ``counts``,
    ``harness``) against ``config``."""
    results = []
    for check in config.checks:
        actual = _actual(summary, check.key)
        status = "no_data" if actual is None else check.status(actual)
        results.append(CheckResult(check.key, check.describe(), actual, status))
    reasons = []
    counts = summary.get("counts", {})
    if not counts.get("turns"):
        reasons.append(NO_TURNS)
    harness = summary.get("harness", {})
    for key, limit, what, effect in (
        ("frame_lateness_ms", config.max_lateness_p99_ms, "fell behind real time (frame lateness",
         "latencies from this run are not trustworthy"),
        ("receive_lag_ms", config.max_receive_lag_p99_ms, "read the agent late (receive lag",
         "TTFB and barge-in include that delay"),
    ):  # fmt: skip
        p99 = (harness.get(key) or {}).get("p99")
        if p99 is not None and p99 > limit:
            reasons.append(
                f"the load generator {what} p99 {p99:.1f} ms > {limit:g} ms): {effect}; add "
                "workers or lower callers per worker"
            )
    cpu = harness.get("worker_cpu_max")
    if cpu is not None and cpu > config.max_worker_cpu_percent:
        reasons.append(
            f"a worker's CPU reached {cpu:.0f} % (> {config.max_worker_cpu_percent:g} %): the "
            "harness was saturated; latencies from this run are not trustworthy"
        )
    warnings = []
    lost = summary.get("workers_lost") or ()
    if lost:
        calls = sum(int(entry.get("calls_in_flight") or 0) for entry in lost)
        warnings.append(
            f"{len(lost)} load worker(s) went missing during the run with {calls} call(s) in "
            "flight (counted as worker_lost, not as agent failures): their last seconds of "
            "measurements are lost"
        )
    statuses = {r.status for r in results}
    if reasons:
        verdict = Verdict.INVALID
    elif "fail" in statuses:
        verdict = Verdict.FAIL
    elif "warn" in statuses or warnings:
        verdict = Verdict.WARN
    else:
        verdict = Verdict.PASS
    exit_code = {
        Verdict.PASS: 0,
        Verdict.WARN: config.warn_exit_code,
        Verdict.FAIL: 1,
        Verdict.INVALID: 2,
    }[verdict]
    return SloResult(verdict, tuple(results), tuple(reasons), exit_code, tuple(warnings))
