"""The pause between turns (``PAUSE_BETWEEN_TURNS_SEC``): the caller waits after the agent's
answer is over — or timed out — before speaking again; a barge-in turn never waits. Driven by
the engine tests' fake-clock edge."""

from __future__ import annotations

from loadtest.conversation import Conversation, Failure, FrameKind, Metric
from tests.unit.test_conversation_engine import (
    MS,
    T0,
    Call,
    answer_after_eos,
    config,
    eos_of,
    make_plan,
)


def test_the_next_turn_waits_the_pause_after_the_answer_is_over() -> None:
    call = Call(Conversation(make_plan(False, False), config(pause_between_turns_ms=1500))).start()
    answer_after_eos(call, 0, ttfb_ms=600, frames=50)  # 1 s of real-time audio
    call.run_until(T0 + 8_000 * MS)
    (eos_sent,) = call.sent_ns(eos_of(0))
    last_audio = eos_sent + 600 * MS + 49 * 20 * MS
    quiet_at = max(last_audio + 20 * MS, last_audio + 400 * MS)
    assert call.first_frame_of(1).due_ns == quiet_at + 1500 * MS
    # Comfort noise fills the pause; the answer's report still ends when it was heard.
    turn0 = [f for f, _ in call.sent_frames if f.turn_index == 0][60:]
    assert turn0 and all(f.kind is FrameKind.TAIL for f in turn0)
    (report, *_) = call.turns()
    assert report.ok and report.ended_ns == last_audio + 20 * MS


def test_a_timed_out_turn_is_followed_after_the_pause_too() -> None:
    call = Call(
        Conversation(
            make_plan(False, False), config(first_byte_timeout_ms=2000, pause_between_turns_ms=700)
        )
    ).start()
    call.run_until(T0 + 6_000 * MS)
    (eos_sent,) = call.sent_ns(eos_of(0))
    (timeout, *_) = call.samples(Metric.TTFB)
    assert timeout.failure is Failure.TTFB_TIMEOUT and timeout.at_ns == eos_sent + 2000 * MS
    assert call.first_frame_of(1).due_ns == eos_sent + 2700 * MS


def test_a_barge_in_turn_does_not_wait() -> None:
    call = Call(
        Conversation(make_plan(False, True), config(pause_between_turns_ms=1500, barge_in_rate=1))
    ).start()
    answer_after_eos(call, 0, ttfb_ms=600, frames=200)  # 4 s: still talking at the barge
    call.run_until(T0 + 8_000 * MS)
    (eos_sent,) = call.sent_ns(eos_of(0))
    first_audio = eos_sent + 600 * MS
    assert call.first_frame_of(1).due_ns == first_audio + 1000 * MS  # barge_after_ms
