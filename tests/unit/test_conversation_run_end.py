"""The conversation when the run ends: finish the turn and hang up, or be cut by the grace.

Driven by the fake-clock edge of ``test_conversation_engine``. A measurement decided before the
end is reported once and only once: as a sample and in the turn's report.
"""

from __future__ import annotations

from loadtest.conversation import (
    Conversation,
    FrameKind,
    GreetingMode,
    Metric,
    Phase,
    Sample,
)
from tests.unit.test_conversation_engine import (
    MS,
    T0,
    Call,
    answer_after_eos,
    barge_call,
    config,
    eos_of,
    make_plan,
)


def test_hang_up_finishes_the_current_turn_then_ends_the_call() -> None:
    call = Call(Conversation(make_plan(False, False, False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=600, frames=25)
    call.run_until(T0 + 500 * MS)  # turn 0 is being spoken
    call.conv.hang_up_after_turn()
    call.run_until(T0 + 20_000 * MS)
    conv = call.conv
    assert conv.done and conv.phase is Phase.DONE and conv.next_deadline_ns() is None
    assert {f.turn_index for f, _ in call.sent_frames} == {0}  # turn 1 never began
    (ttfb,) = call.samples(Metric.TTFB)
    (turn,) = call.samples(Metric.TURN)
    assert ttfb.ok and ttfb.value_ms == 600.0 and turn.ok
    (report,) = call.turns()
    assert report.ok and not report.cut and report.ttfb_ms == 600.0
    (eos_sent,) = call.sent_ns(eos_of(0))
    assert report.ended_ns == eos_sent + 600 * MS + 25 * 20 * MS  # the answer was heard out


def test_hang_up_does_not_barge_into_the_answer() -> None:
    call, _ = barge_call()  # turn 1 is planned to barge in 1 s into turn 0's 6 s answer
    call.run_until(T0 + 1_500 * MS)
    call.conv.hang_up_after_turn()
    call.run_until(T0 + 30_000 * MS)
    assert call.conv.done and call.samples(Metric.BARGE_IN) == []
    assert {f.turn_index for f, _ in call.sent_frames if f.kind is FrameKind.UTTERANCE} == {0}
    (report,) = call.turns()
    assert report.ok and report.barge is None and report.answer is not None
    assert report.answer.frames == 300  # heard to the end


def test_hang_up_during_the_greeting_ends_at_the_next_frame() -> None:
    call = Call(Conversation(make_plan(False), config(greeting=GreetingMode.WAIT))).start()
    call.run_until(T0 + 300 * MS)
    call.conv.hang_up_after_turn()
    call.run_until(T0 + 400 * MS)
    assert call.conv.done and call.turns() == [] and call.samples(Metric.TURN) == []
    assert len(call.greetings()) == 1


def test_cut_after_the_answer_began_keeps_its_ttfb_once_and_judges_no_turn() -> None:
    call = Call(Conversation(make_plan(False, False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=700, frames=200)  # a 4 s answer
    eos_ns = T0 + 49 * 20 * MS
    call.run_until(eos_ns + 1_000 * MS)
    call.conv.cut(call.now_ns)
    call.events.extend(call.conv.events())
    assert call.conv.done and call.conv.frames_due(call.now_ns + MS) == []
    (ttfb,) = call.samples(Metric.TTFB)
    assert ttfb.ok and ttfb.value_ms == 700.0
    assert call.samples(Metric.TURN) == []  # neither a success nor a failure of the agent
    (report,) = call.turns()
    assert report.cut and report.ttfb_ms == 700.0 and report.failure is None
    assert report.ended_ns == call.now_ns
    call.conv.cut(call.now_ns + MS)  # a no-op once done
    assert call.conv.events() == []


def test_cut_before_the_end_of_speech_reports_the_turn_without_samples() -> None:
    call = Call(Conversation(make_plan(False), config())).start()
    call.run_until(T0 + 400 * MS)
    call.conv.cut(call.now_ns)
    call.events.extend(call.conv.events())
    (report,) = call.turns()
    assert report.cut and report.eos_ns is None and report.ttfb_ms is None
    assert [e for e in call.events if isinstance(e, Sample)] == []


def test_cut_lets_a_due_ttfb_timeout_stand() -> None:
    call = Call(Conversation(make_plan(False), config(first_byte_timeout_ms=1000))).start()
    call.run_until(T0 + 49 * 20 * MS + 900 * MS)
    call.conv.cut(T0 + 49 * 20 * MS + 1_100 * MS)  # the grace ran out after the timeout
    call.events.extend(call.conv.events())
    (ttfb,) = call.samples(Metric.TTFB)
    assert ttfb.failure is not None and ttfb.failure.value == "ttfb_timeout"
    (report,) = call.turns()
    assert report.cut and report.failure is ttfb.failure


def test_cut_during_an_undecided_barge_in_drops_it() -> None:
    call, _ = barge_call()
    call.run_until(T0 + 2_900 * MS)  # turn 1 barged in, the agent still talks
    assert call.conv.turn_index == 1
    call.conv.cut(call.now_ns)
    call.events.extend(call.conv.events())
    assert call.samples(Metric.BARGE_IN) == []
    report = call.turns()[-1]
    assert report.cut and report.barge is None
