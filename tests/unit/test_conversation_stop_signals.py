"""Stop signals (ACS StopAudio, Twilio clear) the caller did not provoke by barging in.

Many voice-agent frameworks clear the line whenever their VAD hears the caller start to speak,
whether or not they were talking. Such a signal while the agent is quiet is counted as
``stop_while_silent`` and is never a barge-in; one while the agent talks, with no barge-in
under way, is a ``stray_stop``. Driven by the fake-clock edge of ``test_conversation_engine``.
"""

from __future__ import annotations

from loadtest.conversation import Conversation, Metric
from tests.unit.test_conversation_engine import (
    MS,
    STOP,
    T0,
    Call,
    answer_after_eos,
    barge_call,
    config,
    make_plan,
    speech_of,
)


def test_a_clear_at_each_turn_start_while_the_agent_is_quiet_is_counted_not_a_barge_in() -> None:
    call = Call(Conversation(make_plan(False, False, False), config())).start()
    for turn in range(3):
        answer_after_eos(call, turn, ttfb_ms=600, frames=25)
        call.on_sent(speech_of(turn), lambda f, t: call.deliver(t + 200 * MS, STOP))
    call.run_until(T0 + 60_000 * MS)
    assert call.conv.done
    assert call.conv.counters.stop_while_silent == 3
    assert call.conv.counters.stray_stops == 0
    assert call.samples(Metric.BARGE_IN) == []
    assert [s.value_ms for s in call.samples(Metric.TTFB)] == [600.0] * 3
    assert all(t.ok and t.barge is None for t in call.turns())


def test_a_clear_when_the_caller_barges_in_is_the_barge_in() -> None:
    call, _ = barge_call()
    call.on_sent(speech_of(1), lambda f, t: call.deliver(t + 200 * MS, STOP))
    call.run_until(T0 + 30_000 * MS)
    (barge,) = call.samples(Metric.BARGE_IN)
    assert barge.ok and barge.value_ms == 200.0
    assert call.conv.counters.stop_while_silent == 0


def test_a_stop_while_the_agent_talks_outside_a_barge_in_is_stray() -> None:
    call = Call(Conversation(make_plan(False, False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=600, frames=100)  # a 2 s answer ...
    eos_ns = T0 + 49 * 20 * MS
    call.deliver(eos_ns + 1_000 * MS, STOP)  # ... the agent cuts itself off after 400 ms
    call.run_until(T0 + 30_000 * MS)
    counters = call.conv.counters
    assert (counters.stray_stops, counters.stop_while_silent) == (1, 0)
    assert call.samples(Metric.BARGE_IN) == []
