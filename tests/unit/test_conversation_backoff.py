"""Reconnect backoff: capped exponential ceiling, full jitter, bounds."""

from __future__ import annotations

import random

import pytest

from loadtest.conversation import ReconnectBackoff
from loadtest.errors import ConfigError


def test_ceiling_doubles_then_caps() -> None:
    backoff = ReconnectBackoff(base_ms=200.0, cap_ms=5_000.0)
    ceilings = [backoff.ceiling_ms(n) for n in range(8)]
    assert ceilings == [200.0, 400.0, 800.0, 1_600.0, 3_200.0, 5_000.0, 5_000.0, 5_000.0]
    assert backoff.ceiling_ms(10_000) == 5_000.0  # no overflow for absurd attempts


def test_full_jitter_stays_within_bounds_and_spreads() -> None:
    backoff = ReconnectBackoff(base_ms=100.0, cap_ms=2_000.0)
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = backoff.ceiling_ms(attempt)
        delays = [backoff.delay_ms(attempt, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert min(delays) < 0.1 * ceiling and max(delays) > 0.9 * ceiling  # full jitter


def test_deterministic_with_a_seeded_rng() -> None:
    backoff = ReconnectBackoff()
    first = [backoff.delay_ms(n, random.Random(3)) for n in range(5)]
    again = [backoff.delay_ms(n, random.Random(3)) for n in range(5)]
    assert first == again


def test_constant_factor_and_bad_settings() -> None:
    assert ReconnectBackoff(base_ms=50.0, factor=1.0).ceiling_ms(30) == 50.0
    with pytest.raises(ValueError):
        ReconnectBackoff().ceiling_ms(-1)
    for bad in (
        {"base_ms": 0.0},
        {"base_ms": 500.0, "cap_ms": 100.0},
        {"factor": 0.5},
        {"cap_ms": float("inf")},
    ):
        with pytest.raises(ConfigError):
            ReconnectBackoff(**bad)


def test_failures_grow_the_wait_across_calls_and_a_connect_resets_it() -> None:
    from loadtest.conversation import ConnectFailures

    failures = ConnectFailures(ReconnectBackoff(base_ms=100.0, cap_ms=1_000.0))
    rng = random.Random(4)
    assert failures.delay_ms(rng) == 0.0  # nothing failed yet: connect at once
    ceilings = []
    for _ in range(6):  # e.g. two calls of three attempts each, all refused
        failures.failed()
        ceilings.append(failures.backoff.ceiling_ms(failures.count - 1))
        assert 0.0 <= failures.delay_ms(rng) <= ceilings[-1]
    assert ceilings == [100.0, 200.0, 400.0, 800.0, 1_000.0, 1_000.0]
    waits = [failures.delay_ms(rng) for _ in range(2_000)]
    assert 400.0 < sum(waits) / len(waits) < 600.0  # at the cap: one attempt per cap / 2
    failures.connected()
    assert failures.count == 0 and failures.delay_ms(rng) == 0.0
