"""Where new calls fall in the frame period (:class:`FramePhases`): evenly, whatever the count."""

from __future__ import annotations

import itertools

import pytest

from loadtest.runtime.scheduler import FramePhases

_PERIOD_NS = 20_000_000


def _phases(count: int, first: int = 0) -> list[int]:
    """The phases (ns into the period) of calls ``first`` … ``first + count`` of a process."""
    phases = FramePhases()
    for _ in range(first):
        phases.next_start(0, _PERIOD_NS)
    return [phases.next_start(0, _PERIOD_NS) for _ in range(count)]


def test_a_call_starts_within_one_period_on_its_phase() -> None:
    phases = FramePhases()
    for now_ns in (0, 7, 19_999_999, 123_456_789_012):
        start = phases.next_start(now_ns, _PERIOD_NS)
        assert now_ns <= start < now_ns + _PERIOD_NS
    # a phase is a place on the clock's grid of periods, whenever the call comes
    early, late = FramePhases(), FramePhases()
    for _ in range(5):
        at_0, at_later = early.next_start(0, _PERIOD_NS), late.next_start(987_654_321, _PERIOD_NS)
        assert at_0 % _PERIOD_NS == at_later % _PERIOD_NS


@pytest.mark.parametrize(("count", "first"), [(10, 0), (100, 0), (400, 0), (400, 10_000)])
def test_consecutive_calls_cover_the_period_evenly(count: int, first: int) -> None:
    ordered = sorted(_phases(count, first))
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    gaps.append(ordered[0] + _PERIOD_NS - ordered[-1])
    assert max(gaps) < 3 * _PERIOD_NS / count  # random phases: ~ln(count) times the mean
    # no millisecond of the period holds much more than its share
    per_ms = [0] * 20
    for phase in ordered:
        per_ms[phase // 1_000_000] += 1
    assert max(per_ms) <= count / 20 + 2, per_ms
