"""The benchmark's pure analysis: step verdicts, capacity, fits, pooling, ground-truth matching."""

from __future__ import annotations

from typing import Any

import pytest

from bench.analysis import (
    capacity,
    error_stats,
    linear_fit,
    match_turns,
    pool_steps,
    quantiles,
    step_holds,
    step_judged,
)
from loadtest.metrics.histogram import Histogram

MS = 1_000_000


def _step(callers: int, p99: float | None, ratio: float | None) -> dict[str, Any]:
    return {"callers": callers, "lateness_ms": {"p99": p99}, "frame_rate_ratio": ratio}


@pytest.mark.parametrize(
    ("p99", "ratio", "holds"),
    [
        (1.0, 1.0, True),
        (5.0, 0.99, True),  # both bounds inclusive
        (5.05, 1.0, False),
        (1.0, 0.989, False),
        (1.0, 1.011, False),  # catching up after a stall is not real time either
        (None, 1.0, False),  # no frames at all
        (1.0, None, False),
    ],
)
def test_a_step_holds_on_lateness_and_rate(
    p99: float | None, ratio: float | None, holds: bool
) -> None:
    assert step_holds(_step(100, p99, ratio)) is holds


def test_a_worker_that_reads_late_does_not_hold() -> None:
    step = {**_step(100, 1.0, 1.0), "receive_lag_ms": {"p99": 5.0}}
    assert step_holds(step)
    assert not step_holds({**step, "receive_lag_ms": {"p99": 7.5}})


def test_capacity_counts_only_up_to_the_first_failing_step() -> None:
    steps = [_step(100, 1, 1), _step(200, 2, 1), _step(300, 9, 1), _step(400, 1, 1)]
    assert capacity(steps) == 200
    assert capacity([_step(100, 9, 1)]) == 0
    assert capacity([]) == 0


def test_a_step_that_fails_while_the_host_took_its_cpu_is_not_judged() -> None:
    def stolen(step: dict[str, Any], percent: float) -> dict[str, Any]:
        return {**step, "steal_percent": percent}

    failed_stolen = stolen(_step(100, 5.08, 1), 3.3)
    assert not step_judged(failed_stolen) and not step_holds(failed_stolen)
    assert step_judged(stolen(_step(100, 5.08, 1), 2.0))  # at the limit: a failure
    assert step_judged(stolen(_step(100, 1, 1), 25.0))  # held anyway: it holds
    assert step_judged(_step(100, 9, 1))  # steal not measured: judged as before
    steps = [failed_stolen, _step(200, 3, 1), _step(300, 2, 1), stolen(_step(400, 19, 1), 0.0)]
    assert capacity(steps) == 300  # passed over, not the end of the count
    assert capacity([_step(100, 1, 1), stolen(_step(200, 9, 1), 0.5), _step(300, 1, 1)]) == 100


def test_linear_fit() -> None:
    slope, intercept = linear_fit([(100, 30.0), (200, 50.0), (300, 70.0)]) or (0, 0)
    assert slope == pytest.approx(0.2)
    assert intercept == pytest.approx(10.0)
    assert linear_fit([(100, 1.0), (100, 2.0)]) is None
    assert linear_fit([]) is None


def _part(
    callers: int, frames: int, target: int, lateness: list[float], cpu: float
) -> dict[str, Any]:
    histogram = Histogram(0.05)
    for value in lateness:
        histogram.record(value)
    return {
        "callers": callers, "frames": frames, "frames_target": target, "cpu_percent": cpu,
        "lateness_hist": histogram.serialize(), "receive_lag_hist": histogram.serialize(),
        "agent_cpu_percent": 40.0,
    }  # fmt: skip


def test_pooled_steps_add_up_and_merge_lateness_exactly() -> None:
    a = _part(100, 5000, 5000, [0.5] * 99 + [9.0], 40.0)
    b = _part(100, 4900, 5000, [0.5] * 100, 55.0)
    pooled = pool_steps([a, b])
    assert pooled["callers"] == 200 and pooled["workers"] == 2
    assert pooled["frames"] == 9900 and pooled["frames_target"] == 10000
    assert pooled["frame_rate_ratio"] == 0.99
    assert pooled["lateness_ms"]["max"] == 9.0
    assert pooled["lateness_ms"]["p99"] < 1.0  # 1 slow frame in 200 is above the 99th
    assert pooled["cpu_percent_max"] == 55.0
    assert pooled["receive_lag_ms"]["max"] == 9.0


def _turn(conn: str, index: int, eos: int, ttfb: float | None, **extra: Any) -> dict[str, Any]:
    first = None if ttfb is None else eos + round(ttfb * MS)
    return {"connection_id": conn, "turn_index": index, "eos_ns": eos, "ttfb_ms": ttfb,
            "answer_first_ns": first, "barge": extra.get("barge")}  # fmt: skip


def _reply(conn: str, index: int, rx: int, tx: int | None, **extra: Any) -> dict[str, Any]:
    return {"connection_id": conn, "kind": "reply", "turn_index": index,
            "last_speech_rx_ns": rx, "response_first_tx_ns": tx, **extra}  # fmt: skip


def test_ttfb_matched_by_connection_and_turn() -> None:
    # Caller EOS at 1 s, agent read it 0.3 ms later, answered 600 ms after that, the caller
    # read the answer 0.2 ms after it was written: harness TTFB 600.5 ms, error 0.5 ms.
    harness = [_turn("a", 0, 1000 * MS, 600.5)]
    truth = [_reply("a", 0, 1000 * MS + 300_000, 1600 * MS + 300_000)]
    matched = match_turns(harness, truth)
    assert matched.by_index == 1 and matched.by_time == 0 and matched.unmatched == 0
    assert matched.ttfb_errors_ms == [pytest.approx(0.5)]
    assert matched.ttfb_send_transit_ms == [pytest.approx(0.3)]
    assert matched.ttfb_recv_transit_ms == [pytest.approx(0.2)]


def test_ttfb_falls_back_to_time_when_turn_numbers_disagree() -> None:
    # The agent counted an extra turn (e.g. its VAD split an utterance): same connection,
    # nearest last-speech instant wins.
    harness = [_turn("a", 1, 5000 * MS, 601.0)]
    truth = [
        _reply("a", 1, 2000 * MS, 2600 * MS),
        _reply("a", 2, 5000 * MS + 500_000, 5600 * MS + 500_000),
        _reply("b", 1, 5000 * MS, 5600 * MS),  # another call: never matched
    ]
    matched = match_turns(harness, truth)
    assert (matched.by_index, matched.by_time, matched.unmatched) == (0, 1, 0)
    assert matched.ttfb_errors_ms == [pytest.approx(1.0)]


def test_unanswered_or_unknown_turns_are_unmatched() -> None:
    harness = [_turn("a", 0, 1000 * MS, 600.0), _turn("zzz", 0, 1000 * MS, 600.0)]
    truth = [_reply("a", 0, 1000 * MS, None)]
    matched = match_turns(harness, truth)
    assert matched.unmatched == 2 and matched.ttfb_errors_ms == []


def test_barge_in_matched_by_barge_speech_instant() -> None:
    barge = {"outcome": "stopped", "speech_ns": 3000 * MS, "latency_ms": 151.0}
    harness = [_turn("a", 2, 6000 * MS, None, barge=barge)]
    truth = [_reply("a", 1, 1000 * MS, 1600 * MS, barge_speech_rx_ns=3000 * MS + 400_000,
                    stop_tx_ns=3150 * MS + 400_000)]  # fmt: skip
    matched = match_turns(harness, truth)
    assert matched.barge_errors_ms == [pytest.approx(1.0)]
    ignored = {"outcome": "ignored", "speech_ns": 3000 * MS, "latency_ms": None}
    assert match_turns([_turn("a", 2, 6000 * MS, None, barge=ignored)], truth).barge_errors_ms == []


def test_window_keeps_measurements_made_wholly_inside() -> None:
    # Turn 0 lies inside; turn 1's speech ended inside but its answer came after the window
    # (while the next step ramped up); turn 2 is after it.
    harness = [_turn("a", 0, 1000 * MS, 600.0), _turn("a", 1, 1800 * MS, 600.0),
               _turn("a", 2, 9000 * MS, 600.0)]  # fmt: skip
    truth = [_reply("a", 0, 1000 * MS, 1600 * MS), _reply("a", 1, 1800 * MS, 2400 * MS),
             _reply("a", 2, 9000 * MS, 9600 * MS)]  # fmt: skip
    matched = match_turns(harness, truth, window=(500 * MS, 2000 * MS))
    assert matched.ttfb_errors_ms == [pytest.approx(0.0)] and matched.by_index == 1
    # Barge-in: first barge speech frame to StopAudio read, both inside.
    barge = {"outcome": "stopped", "speech_ns": 1900 * MS, "latency_ms": 150.0}
    record = _reply("a", 5, 0, None, barge_speech_rx_ns=1900 * MS, stop_tx_ns=2050 * MS)
    straddling = [_turn("a", 6, 5000 * MS, None, barge=barge)]
    assert match_turns(straddling, [record], window=(500 * MS, 2000 * MS)).barge_errors_ms == []
    assert match_turns(straddling, [record], window=(500 * MS, 2100 * MS)).barge_errors_ms == [0.0]


def test_quantiles_and_error_stats() -> None:
    q = quantiles([float(v) for v in range(1, 101)])
    assert q == {"count": 100, "p50": 50.0, "p99": 99.0, "max": 100.0, "min": 1.0}
    assert quantiles([])["p50"] is None
    harness = [_turn("a", 0, 1000 * MS, 599.0)]
    truth = [_reply("a", 0, 1000 * MS, 1600 * MS)]
    stats = error_stats(match_turns(harness, truth))
    assert stats["ttfb_error_ms"]["p50"] == -1.0
    assert stats["ttfb_abs_error_ms"]["p50"] == 1.0
    assert stats["barge_in_error_ms"]["count"] == 0
