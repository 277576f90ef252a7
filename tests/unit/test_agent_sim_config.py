"""Agent simulator settings: latency distributions, faults, causality."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from loadtest.agent_sim.config import (
    AgentSettings,
    FaultKind,
    FaultPlan,
    FixedLatency,
    LognormalLatency,
    ReplyPolicy,
    UniformLatency,
    parse_fault,
    parse_latency_dist,
)
from loadtest.errors import ConfigError


def test_latency_dists_parse_and_sample() -> None:
    rng = random.Random(3)
    assert parse_latency_dist("fixed", 700, 500) == FixedLatency(700.0)
    uniform = parse_latency_dist("uniform:600,900", 0, 500)
    assert uniform == UniformLatency(600.0, 900.0)
    assert all(600 <= uniform.sample_ms(rng) <= 900 for _ in range(1000))
    lognormal = parse_latency_dist("LogNormal:800,0.5", 0, 500)
    assert lognormal == LognormalLatency(800.0, 0.5, floor_ms=500.0)
    samples = sorted(lognormal.sample_ms(rng) for _ in range(4001))
    assert min(samples) >= 500.0
    assert 700 < samples[2000] < 900  # the median


@pytest.mark.parametrize(
    ("spec", "latency_ms", "message"),
    [
        ("fixed", 300, "--latency-ms 300 ms is below --endpoint-silence-ms 500"),
        ("uniform:400,900", 0, "below --endpoint-silence-ms 500"),
        ("lognormal:450,0.3", 0, "median 450 ms is below --endpoint-silence-ms 500"),
        ("uniform:900,600", 0, "need 0 <= LO <= HI"),
        ("uniform:600", 0, "expected 2 comma-separated numbers"),
        ("lognormal:800,x", 0, "expected 2 comma-separated numbers"),
        ("lognormal:800,9", 0, "SIGMA <= 3"),
        ("gamma:1,2", 0, "is not allowed"),
        ("fixed:3", 0, "is not allowed"),
    ],
)
def test_bad_latency_specs(spec: str, latency_ms: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_latency_dist(spec, latency_ms, 500)


def test_causality_message_explains_itself() -> None:
    with pytest.raises(ConfigError) as info:
        parse_latency_dist("fixed", 300, 500)
    assert "last speech frame" in str(info.value) and "\n" not in str(info.value)


def test_parse_fault() -> None:
    assert parse_fault("refuse-503=0.5") == (FaultKind.REFUSE_503, 0.5)
    assert parse_fault("STALL=1") == (FaultKind.STALL, 1.0)
    for bad in ("nope=0.1", "silent", "silent=2", "silent=x", "silent=-0.1"):
        with pytest.raises(ConfigError, match="--fault"):
            parse_fault(bad)


def test_fault_plan_draws() -> None:
    plan = FaultPlan(
        ((FaultKind.REFUSE_503, 0.25), (FaultKind.SILENT, 0.5), (FaultKind.STALL, 0.5))
    )
    rng = random.Random(5)
    connection = Counter(plan.draw_connection(rng) for _ in range(4000))
    assert set(connection) == {FaultKind.REFUSE_503, None}
    assert 900 < connection[FaultKind.REFUSE_503] < 1100
    turns = Counter(plan.draw_turn(rng) for _ in range(4000))
    assert set(turns) == {FaultKind.SILENT, FaultKind.STALL}  # they add up to 1
    a, b = random.Random(1), random.Random(1)
    assert [plan.draw_turn(a) for _ in range(50)] == [plan.draw_turn(b) for _ in range(50)]


def test_fault_probabilities_must_fit() -> None:
    with pytest.raises(ConfigError, match="per-turn probabilities add up to 1.5"):
        FaultPlan(((FaultKind.SILENT, 0.7), (FaultKind.STALL, 0.8)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint_silence_ms": 510}, "--endpoint-silence-ms 510 must be a multiple of 20"),
        ({"response_ms": 0}, "--response-ms 0"),
        ({"greeting_ms": 30}, "--greeting-ms 30"),
        ({"barge_latency_ms": 40}, "--barge-latency-ms 40 is below 60 ms"),
        ({"barge_min_speech_ms": 200, "barge_latency_ms": 150}, "below 200 ms"),
        ({"burst_speed": 0.5}, "--burst-speed"),
        ({"latency": FixedLatency(400.0)}, "below --endpoint-silence-ms 500"),
    ],
)
def test_policy_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(ReplyPolicy(), **changes)  # type: ignore[arg-type]


def test_defaults_are_valid() -> None:
    policy = ReplyPolicy()
    assert policy.response_frames == 100 and policy.barge_min_frames == 3
    assert AgentSettings().port == 8010
    with pytest.raises(ConfigError, match="--path"):
        AgentSettings(path="media")
