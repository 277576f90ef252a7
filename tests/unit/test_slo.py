from __future__ import annotations

from typing import Any

import pytest

from loadtest.errors import ConfigError
from loadtest.metrics.slo import DEFAULT_SLO, Verdict, evaluate, parse_slo


def summary(ttfb95: float = 900, barge95: float = 300, conn: float = 1.0, turn: float = 1.0,
            lateness99: float = 1.0, cpu: float = 40.0, turns: int = 50,
            lag99: float = 1.0) -> dict[str, Any]:  # fmt: skip
    return {
        "metrics": {"ttfb_ms": {"count": turns, "p95": ttfb95, "p50": ttfb95 / 2},
                    "barge_in_ms": {"count": 5, "p95": barge95}},
        "rates": {"connection_success": conn, "turn_success": turn},
        "counts": {"turns": turns},
        "harness": {"frame_lateness_ms": {"p99": lateness99}, "receive_lag_ms": {"p99": lag99},
                    "worker_cpu_max": cpu},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "verdict", "code"),
    [
        ({}, Verdict.PASS, 0),
        ({"ttfb95": 2500}, Verdict.WARN, 0),
        ({"ttfb95": 3100}, Verdict.FAIL, 1),
        ({"barge95": 1200}, Verdict.FAIL, 1),
        ({"conn": 0.96}, Verdict.WARN, 0),
        ({"turn": 0.5}, Verdict.FAIL, 1),
        ({"turns": 0}, Verdict.INVALID, 2),
        ({"lateness99": 45.0, "ttfb95": 9000}, Verdict.INVALID, 2),
        ({"cpu": 99.0}, Verdict.INVALID, 2),
        ({"lag99": 35.0}, Verdict.INVALID, 2),
        ({"lag99": 19.0}, Verdict.PASS, 0),
    ],
)
def test_verdicts(kwargs: dict[str, float], verdict: Verdict, code: int) -> None:
    result = evaluate(summary(**kwargs))  # type: ignore[arg-type]
    assert result.verdict is verdict and result.exit_code == code


def test_saturated_harness_is_named_not_blamed_on_agent() -> None:
    result = evaluate(summary(lateness99=45.0, ttfb95=9000))
    assert "fell behind real time" in result.reasons[0]
    assert [c.name for c in result.checks][:2] == ["ttfb_p95_ms", "barge_in_p95_ms"]


def test_receive_lag_is_a_harness_limit() -> None:
    """An overloaded worker reads the agent's audio late: every TTFB then includes that wait."""
    result = evaluate(summary(lag99=35.0))
    assert list(result.reasons) == [
        "the load generator read the agent late (receive lag p99 35.0 ms > 20 ms): TTFB and "
        "barge-in include that delay; add workers or lower callers per worker"
    ]
    relaxed = parse_slo("harness: {max_receive_lag_p99_ms: 50}\n", source="slo.yaml")
    assert relaxed.max_receive_lag_p99_ms == 50 and relaxed.max_lateness_p99_ms == 20
    assert evaluate(summary(lag99=35.0), relaxed).verdict is Verdict.PASS
    assert evaluate({**summary(), "harness": {}}).verdict is Verdict.PASS  # older summaries


def test_no_barge_data_is_no_data_not_failure() -> None:
    data = summary()
    data["metrics"]["barge_in_ms"] = {"count": 0, "p95": None}
    result = evaluate(data)
    assert result.verdict is Verdict.PASS
    assert {c.name: c.status for c in result.checks}["barge_in_p95_ms"] == "no_data"


def test_yaml_overrides_add_and_remove_checks() -> None:
    config = parse_slo(
        "ttfb_p99_ms: {target: 1500, acceptable: 2500}\nbarge_in_p95_ms: null\n"
        "harness: {max_lateness_p99_ms: 5}\nwarn_exit_code: 1\n",
        source="slo.yaml",
    )
    keys = [c.key for c in config.checks]
    assert "ttfb_p99_ms" in keys and "barge_in_p95_ms" not in keys
    assert config.max_lateness_p99_ms == 5 and config.warn_exit_code == 1
    assert evaluate(summary(ttfb95=2500), config).exit_code == 1  # warn → 1 when configured
    assert len(DEFAULT_SLO.checks) == 4  # defaults untouched


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ttfb_p95_ms: 100\n", "expected {target"),
        ("ttfb_p95_ms: {target: 100, acceptable: 50}\n", "looser"),
        ("turn_success: {target: 0.9, acceptable: 0.95}\n", "looser"),
        ("latency: {target: 1}\n", "unknown key"),
        ("warn_exit_code: 3\n", "0 or 1"),
        ("harness: {max_lag: 5}\n", "max_receive_lag_p99_ms"),
        ("ttfb_p95_ms: {target: fast}\n", "not a number"),
    ],
)
def test_bad_slo_files(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_slo(text, source="slo.yaml")
