"""SLO checks → ALT fail criteria, one test per SLO kind (pure)."""

from __future__ import annotations

import pytest

from loadtest.alt.criteria import ClientCriterion, map_slo
from loadtest.errors import ConfigError
from loadtest.metrics.slo import DEFAULT_SLO, Check, SloConfig, parse_slo


def _only(slo_yaml: str, key: str) -> ClientCriterion:
    slo = parse_slo(slo_yaml, source="slo.yaml", base=SloConfig(checks=()))
    (criterion,) = [c for c in map_slo(slo).criteria if c.source == key]
    return criterion


def test_default_slo_maps_to_the_acceptable_thresholds() -> None:
    mapping = map_slo(DEFAULT_SLO)
    assert [str(c) for c in mapping.criteria] == [
        "ttfb: p95(response_time_ms) > 3000",
        "barge_in: p95(response_time_ms) > 1000",
        "connect: percentage(error) > 5",
        "turn: percentage(error) > 10",
    ]
    assert len(mapping.unmapped) == 1 and "Engine health" in mapping.unmapped[0]


def test_warn_exit_code_1_fails_alt_at_the_target() -> None:
    slo = parse_slo("warn_exit_code: 1\n", source="slo.yaml")
    assert [str(c) for c in map_slo(slo).criteria] == [
        "ttfb: p95(response_time_ms) > 2000",
        "barge_in: p95(response_time_ms) > 500",
        "connect: percentage(error) > 2",
        "turn: percentage(error) > 5",
    ]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ttfb_p50_ms", "ttfb: p50(response_time_ms) > 1500"),
        ("ttfb_p90_ms", "ttfb: p90(response_time_ms) > 1500"),
        ("barge_in_p99_ms", "barge_in: p99(response_time_ms) > 1500"),
        ("greeting_p95_ms", "greeting: p95(response_time_ms) > 1500"),
        ("connect_max_ms", "connect: max(response_time_ms) > 1500"),
        ("turn_p99_ms", "turn: p99(response_time_ms) > 1500"),
    ],
)
def test_latency_check_becomes_a_response_time_criterion_on_its_request(
    key: str, expected: str
) -> None:
    criterion = _only(f"{key}: {{target: 1000, acceptable: 1500}}\n", key)
    assert str(criterion) == expected
    assert criterion.metric == "response_time_ms" and criterion.condition == ">"


def test_fractional_latency_threshold_rounds_up_to_whole_ms() -> None:
    criterion = _only("ttfb_p95_ms: {target: 1200.4, acceptable: 1800.2}\n", "ttfb_p95_ms")
    assert criterion.expression == "p95(response_time_ms) > 1801"


@pytest.mark.parametrize(
    ("key", "request_name"),
    [("connection_success", "connect"), ("turn_success", "turn"), ("barge_in_success", "barge_in")],
)
def test_success_ratio_becomes_an_error_percentage_on_its_request(
    key: str, request_name: str
) -> None:
    criterion = _only(f"{key}: {{target: 0.99, acceptable: 0.975}}\n", key)
    assert str(criterion) == f"{request_name}: percentage(error) > 2.5"
    assert criterion.yaml_item() == {request_name: "percentage(error) > 2.5"}


def test_perfect_success_target_fails_on_any_error() -> None:
    slo = parse_slo("warn_exit_code: 1\nturn_success: {target: 1.0}\n", source="s")
    (turn,) = [c for c in map_slo(slo).criteria if c.source == "turn_success"]
    assert turn.expression == "percentage(error) > 0"


def test_switched_off_check_has_no_criterion() -> None:
    slo = parse_slo("barge_in_p95_ms: null\n", source="s")
    assert "barge_in_p95_ms" not in {c.source for c in map_slo(slo).criteria}


def test_check_without_alt_equivalent_is_one_clear_error() -> None:
    slo = SloConfig(checks=(Check("talk_over_p95_ms", 100, 200),))
    with pytest.raises(ConfigError, match="talk_over_p95_ms.*no Azure Load Testing equivalent"):
        map_slo(slo)


def test_more_criteria_than_alt_allows_is_refused() -> None:
    slo = SloConfig(checks=tuple(Check("ttfb_p95_ms", 1000 + i, 2000 + i) for i in range(51)))
    with pytest.raises(ConfigError, match="51 SLO checks.*allows 50"):
        map_slo(slo)


def test_criterion_without_request_applies_to_all_requests() -> None:
    criterion = ClientCriterion(None, "avg", "response_time_ms", 300, "manual")
    assert criterion.yaml_item() == "avg(response_time_ms) > 300" == str(criterion)
