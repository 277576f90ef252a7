"""The conversation engine driven by a fake clock: no sleeping, exact nanosecond stamps.

A small discrete-event driver plays the edge: it wakes at ``next_deadline_ns()``, sends what
``frames_due`` returns (optionally late), reports each send, and delivers scripted agent
messages at their arrival instants. Agent behaviour is scripted in reaction to the caller's
frames (``on_sent`` hooks), the way a real agent reacts to what it hears.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from loadtest.conversation import (
    BargeOutcome,
    Conversation,
    ConversationConfig,
    Event,
    Failure,
    Frame,
    FrameKind,
    GreetingMode,
    GreetingReport,
    Metric,
    Phase,
    PlannedTurn,
    Sample,
    TurnAudio,
    TurnPlan,
    TurnReport,
)
from loadtest.protocols.base import Inbound, InboundKind

MS = 1_000_000
T0 = 10_000 * MS  # the connection is up here (arbitrary monotonic origin)
FRAME_BYTES = 640  # 20 ms of 16 kHz PCM16
AUDIO = Inbound(InboundKind.AUDIO, audio_bytes=FRAME_BYTES)
STOP = Inbound(InboundKind.STOP)

# 60 frames: leading silence 0..4, speech 5..49 (EOS frame 49), trailing silence 50..59
UTTERANCE = TurnAudio(key="hello.pcm", frame_count=60, speech_start_frame=5, eos_frame=49)


def make_plan(*barges: bool, audio: TurnAudio = UTTERANCE) -> TurnPlan:
    turns = tuple(
        PlannedTurn(
            index=i,
            scenario="demo",
            audio=audio,
            barge=barge,
            speech_start_frame=audio.speech_start_frame,
            eos_frame=audio.eos_frame,
            last_frame=audio.frame_count - 1,
        )
        for i, barge in enumerate(barges)
    )
    return TurnPlan(scenario="demo", turns=turns)


def config(**overrides: object) -> ConversationConfig:
    values: dict[str, object] = {"greeting": GreetingMode.OFF}
    values.update(overrides)
    return ConversationConfig(**values)  # type: ignore[arg-type]


@dataclass
class Call:
    """The edge, simulated: a fake clock, a sender loop and a scripted agent."""

    conv: Conversation
    now_ns: int = T0
    late_ns: Callable[[Frame], int] = lambda frame: 0
    sent_frames: list[tuple[Frame, int]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    hooks: list[tuple[Callable[[Frame], bool], Callable[[Frame, int], object]]] = field(
        default_factory=list
    )
    _inbox: list[tuple[int, int, Inbound]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def start(self) -> Call:
        self.conv.start(self.now_ns)
        return self

    def deliver(self, arrival_ns: int, inbound: Inbound = AUDIO) -> None:
        heapq.heappush(self._inbox, (arrival_ns, next(self._seq), inbound))

    def audio(self, first_ns: int, frames: int, every_ns: int = 20 * MS) -> int:
        """Agent audio frames arriving from ``first_ns``; returns the last arrival."""
        for i in range(frames):
            self.deliver(first_ns + i * every_ns)
        return first_ns + (frames - 1) * every_ns

    def stop_agent(self, at_ns: int, *, signal: bool = True) -> None:
        """The agent stops its audio at ``at_ns`` (with a stop signal, or just goes quiet)."""
        self._inbox = [m for m in self._inbox if m[0] <= at_ns or m[2] is not AUDIO]
        heapq.heapify(self._inbox)
        if signal:
            self.deliver(at_ns, STOP)

    def on_sent(
        self, match: Callable[[Frame], bool], react: Callable[[Frame, int], object]
    ) -> None:
        self.hooks.append((match, react))

    def run_until(self, end_ns: int) -> None:
        conv = self.conv
        while True:
            deadline = conv.next_deadline_ns()
            arrival = self._inbox[0][0] if self._inbox else None
            if arrival is not None and (deadline is None or arrival <= deadline):
                if arrival > end_ns:
                    break
                _, _, inbound = heapq.heappop(self._inbox)
                self.now_ns = max(self.now_ns, arrival)
                conv.receive(inbound, arrival)
                continue
            if deadline is None or deadline > end_ns:
                break
            self.now_ns = max(self.now_ns, deadline)
            frames = conv.frames_due(self.now_ns)
            for frame in frames:
                sent_ns = self.now_ns + self.late_ns(frame)
                conv.sent(frame, sent_ns)
                self.sent_frames.append((frame, sent_ns))
                for match, react in self.hooks:
                    if match(frame):
                        react(frame, sent_ns)
            self._drain()
        self.now_ns = max(self.now_ns, end_ns)
        self._drain()

    def _drain(self) -> None:
        # The real edge checks has_events at every frame and drains only then: in every test
        # here it must say exactly whether events() has anything.
        pending = self.conv.has_events
        drained = self.conv.events()
        assert pending == bool(drained) and not self.conv.has_events
        self.events.extend(drained)

    # -- what happened ------------------------------------------------------------------

    def samples(self, metric: Metric) -> list[Sample]:
        return [e for e in self.events if isinstance(e, Sample) and e.metric is metric]

    def turns(self) -> list[TurnReport]:
        return [e for e in self.events if isinstance(e, TurnReport)]

    def greetings(self) -> list[GreetingReport]:
        return [e for e in self.events if isinstance(e, GreetingReport)]

    def sent_ns(self, match: Callable[[Frame], bool]) -> list[int]:
        return [t for f, t in self.sent_frames if match(f)]

    def first_frame_of(self, turn: int) -> Frame:
        return next(
            f for f, _ in self.sent_frames if f.turn_index == turn and f.kind is FrameKind.UTTERANCE
        )


def eos_of(turn: int) -> Callable[[Frame], bool]:
    return lambda f: f.eos and f.turn_index == turn


def speech_of(turn: int) -> Callable[[Frame], bool]:
    return lambda f: f.first_speech and f.turn_index == turn


def answer_after_eos(
    call: Call, turn: int, ttfb_ms: int, frames: int, every_ns: int = 20 * MS
) -> None:
    """The agent answers ``turn`` ``ttfb_ms`` after its EOS frame left."""
    call.on_sent(eos_of(turn), lambda f, t: call.audio(t + ttfb_ms * MS, frames, every_ns))


# -- pacing --------------------------------------------------------------------------------


def test_frames_are_due_on_a_fixed_grid_and_a_late_wakeup_does_not_drift() -> None:
    conv = Conversation(make_plan(False), config())
    conv.start(T0)
    assert conv.next_deadline_ns() == T0
    first = conv.frames_due(T0)
    assert [f.due_ns for f in first] == [T0]
    conv.sent(first[0], T0 + 300_000)
    assert conv.next_deadline_ns() == T0 + 20 * MS

    # the edge oversleeps by 50 ms once: every overdue frame comes out, each with its own due
    late_now = T0 + 70 * MS
    batch = conv.frames_due(late_now)
    assert [f.due_ns for f in batch] == [T0 + 20 * MS, T0 + 40 * MS, T0 + 60 * MS]
    lateness = [conv.sent(f, late_now) for f in batch]
    assert lateness == [50 * MS, 30 * MS, 10 * MS]
    assert conv.next_deadline_ns() == T0 + 80 * MS  # back on the grid, no drift
    assert conv.frames_due(T0 + 79 * MS) == []
    nxt = conv.frames_due(T0 + 80 * MS)
    assert [f.slot for f in nxt] == [4] and nxt[0].index == 4
    assert conv.sent(nxt[0], T0 + 80 * MS) == 0


def test_frame_k_of_every_turn_is_due_at_t0_plus_k_chunks() -> None:
    call = Call(Conversation(make_plan(False, False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=500, frames=25)
    every_third_late = {3: 7 * MS, 17: 13 * MS, 65: 19 * MS}
    call.late_ns = lambda f: every_third_late.get(f.slot, 0)
    call.run_until(T0 + 10_000 * MS)
    for turn in (0, 1):
        frames = [f for f, _ in call.sent_frames if f.turn_index == turn]
        utterance = [f for f in frames if f.kind is FrameKind.UTTERANCE]
        t0 = utterance[0].due_ns
        assert [f.index for f in utterance] == list(range(60))
        assert all(f.due_ns == t0 + f.index * 20 * MS for f in utterance)
    slots = [f.slot for f, _ in call.sent_frames]
    assert slots == list(range(len(slots)))  # one continuous stream, no gap, no repeat
    assert all(f.due_ns == T0 + f.slot * 20 * MS for f, _ in call.sent_frames)


def test_sent_must_be_reported_before_the_next_batch() -> None:
    conv = Conversation(make_plan(False), config())
    with pytest.raises(RuntimeError, match="before start"):
        conv.frames_due(T0)
    with pytest.raises(RuntimeError, match="before start"):
        conv.receive(AUDIO, T0)
    conv.start(T0)
    batch = conv.frames_due(T0 + 40 * MS)
    with pytest.raises(RuntimeError, match="sent"):
        conv.frames_due(T0 + 60 * MS)
    with pytest.raises(RuntimeError, match="order"):
        conv.sent(batch[1], T0 + 41 * MS)


# -- end of speech and TTFB ----------------------------------------------------------------


def test_ttfb_is_first_audio_after_the_actual_send_of_the_eos_frame() -> None:
    call = Call(Conversation(make_plan(False), config())).start()
    call.late_ns = lambda f: 7 * MS if f.eos else 0  # EOS frame leaves 7 ms late
    answer_after_eos(call, 0, ttfb_ms=640, frames=10)
    call.run_until(T0 + 5_000 * MS)
    (eos_sent,) = call.sent_ns(eos_of(0))
    assert eos_sent == T0 + 49 * 20 * MS + 7 * MS
    (ttfb,) = call.samples(Metric.TTFB)
    assert ttfb.ok and ttfb.value_ms == 640.0 and ttfb.turn_index == 0
    (report,) = call.turns()
    assert report.eos_ns == eos_sent and report.ttfb_ms == 640.0 and report.ok
    # the frames' media time (what Twilio's media.timestamp carries), not their send instant
    assert (report.speech_media_ms, report.eos_media_ms) == (5 * 20, 49 * 20)


def test_stale_audio_that_arrived_before_eos_never_counts_as_ttfb() -> None:
    conv = Conversation(make_plan(False), config())
    conv.start(T0)
    eos_due = T0 + 49 * 20 * MS
    frames = conv.frames_due(eos_due)
    for f in frames[:-1]:
        conv.sent(f, f.due_ns)
    eos_frame = frames[-1]
    assert eos_frame.eos
    # the receiver reads two messages while the EOS frame is being sent: one stamped before
    # the send completed (talk-over), one after (the answer) — reported before sent()
    conv.receive(AUDIO, eos_due + 1 * MS)
    conv.receive(AUDIO, eos_due + 5 * MS)
    conv.sent(eos_frame, eos_due + 3 * MS)
    # a message read long ago but handed over only now keeps its old stamp
    conv.receive(AUDIO, eos_due + 4 * MS)  # out of order, yet after EOS: part of the answer
    events = conv.events()
    (ttfb,) = [e for e in events if isinstance(e, Sample) and e.metric is Metric.TTFB]
    assert ttfb.value_ms == 2.0

    conv2 = Conversation(make_plan(False), config())
    conv2.start(T0)
    for f in conv2.frames_due(eos_due):
        conv2.sent(f, f.due_ns)
    conv2.receive(AUDIO, eos_due - 5 * MS)  # stale: arrived before EOS, delivered after
    conv2.receive(AUDIO, eos_due - 1 * MS)
    assert not [e for e in conv2.events() if isinstance(e, Sample)]
    assert conv2.phase is Phase.AWAITING_ANSWER
    conv2.receive(AUDIO, eos_due + 700 * MS)
    (ttfb2,) = [e for e in conv2.events() if isinstance(e, Sample)]
    assert ttfb2.metric is Metric.TTFB and ttfb2.value_ms == 700.0


def test_talk_over_is_agent_audio_while_the_caller_speaks_never_a_ttfb() -> None:
    call = Call(Conversation(make_plan(False), config())).start()
    speech_start = T0 + 5 * 20 * MS
    call.deliver(T0 + 30 * MS)  # during the leading silence: stray, not talk-over
    call.audio(speech_start + 200 * MS, frames=15)  # 300 ms of audio over the caller
    answer_after_eos(call, 0, ttfb_ms=900, frames=10)
    call.run_until(T0 + 6_000 * MS)
    (report,) = call.turns()
    assert report.talk_over.frames == 15
    assert report.talk_over.audio_ms == 300.0
    assert report.talk_over.first_arrival_ns == speech_start + 200 * MS
    assert report.ttfb_ms == 900.0
    assert [s.value_ms for s in call.samples(Metric.TTFB)] == [900.0]
    assert call.conv.counters.stray_audio_frames == 1


def test_no_answer_is_a_ttfb_timeout_and_the_next_turn_follows_on_the_grid() -> None:
    call = Call(Conversation(make_plan(False, False), config(first_byte_timeout_ms=2000)))
    call.start()
    call.run_until(T0 + 4_000 * MS)
    (eos_sent,) = call.sent_ns(eos_of(0))
    (timeout,) = call.samples(Metric.TTFB)
    assert timeout.failure is Failure.TTFB_TIMEOUT and timeout.value_ms == 2000.0
    assert timeout.at_ns == eos_sent + 2000 * MS
    (turn0,) = call.turns()
    assert turn0.failure is Failure.TTFB_TIMEOUT and turn0.ended_ns == eos_sent + 2000 * MS
    (turn_sample,) = call.samples(Metric.TURN)
    assert turn_sample.failure is Failure.TTFB_TIMEOUT
    first_of_1 = call.first_frame_of(1)
    assert first_of_1.due_ns == eos_sent + 2000 * MS  # the first slot at/after the timeout


# -- comfort-noise tail and the answer's end -----------------------------------------------


def test_comfort_noise_tail_runs_until_the_answer_is_over() -> None:
    call = Call(Conversation(make_plan(False, False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=600, frames=50)  # 1 s of real-time audio
    call.run_until(T0 + 6_000 * MS)
    turn0 = [f for f, _ in call.sent_frames if f.turn_index == 0]
    kinds = [f.kind for f in turn0]
    assert kinds[:60] == [FrameKind.UTTERANCE] * 60  # the whole recording, trailing silence too
    tail = turn0[60:]
    assert tail and all(f.kind is FrameKind.TAIL for f in tail)
    assert [f.index for f in tail] == list(range(len(tail)))  # cycle noise frames by index
    (eos_sent,) = call.sent_ns(eos_of(0))
    last_audio = eos_sent + 600 * MS + 49 * 20 * MS
    playback_end = last_audio + 20 * MS
    quiet_at = max(playback_end, last_audio + 400 * MS)
    first_of_1 = call.first_frame_of(1)
    assert first_of_1.due_ns == quiet_at  # on the grid already: 20 ms multiples
    assert tail[-1].due_ns == quiet_at - 20 * MS
    (turn0_report,) = call.turns()
    assert turn0_report.ended_ns == playback_end and turn0_report.ok
    answer = turn0_report.answer
    assert answer is not None and answer.frames == 50 and answer.audio_ms == 1000.0
    assert answer.gaps_ms == (20.0,) * 49


def test_burst_audio_keeps_the_caller_listening_until_playback_ends() -> None:
    call = Call(Conversation(make_plan(False, False), config())).start()
    # 3 s of audio arrives in 150 ms: 150 frames 1 ms apart
    answer_after_eos(call, 0, ttfb_ms=500, frames=150, every_ns=1 * MS)
    call.run_until(T0 + 8_000 * MS)
    (eos_sent,) = call.sent_ns(eos_of(0))
    first = eos_sent + 500 * MS
    playback_end = first + 150 * 20 * MS  # plays for 3 s from the first arrival
    assert playback_end > first + 149 * MS + 400 * MS  # a quiet gap alone would end too soon
    (report,) = call.turns()
    assert report.ended_ns == playback_end
    assert call.first_frame_of(1).due_ns == playback_end  # 20 ms grid: eos, 500, 3000 align
    assert report.answer is not None and report.answer.max_gap_ms == 1.0


def test_conversation_ends_after_the_last_answer() -> None:
    call = Call(Conversation(make_plan(False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=500, frames=5)
    call.run_until(T0 + 10_000 * MS)
    conv = call.conv
    assert conv.done and conv.phase is Phase.DONE
    assert conv.next_deadline_ns() is None and conv.frames_due(T0 + 20_000 * MS) == []
    assert [s.metric for s in call.events if isinstance(s, Sample)] == [Metric.TTFB, Metric.TURN]
    conv.closed(T0 + 20_000 * MS, 1000, "bye")  # a no-op after done
    assert conv.events() == []


def test_an_answer_that_never_ends_is_cut_after_max_tail() -> None:
    cfg = config(max_tail_ms=6000)
    call = Call(Conversation(make_plan(False, False), cfg)).start()
    answer_after_eos(call, 0, ttfb_ms=300, frames=1000)  # 20 s of audio
    call.run_until(T0 + 9_000 * MS)
    (eos_sent,) = call.sent_ns(eos_of(0))
    (report,) = call.turns()
    assert report.truncated and report.ok
    assert call.first_frame_of(1).due_ns == eos_sent + 6000 * MS


# -- greeting ------------------------------------------------------------------------------


def test_greeting_latency_then_the_first_turn_waits_for_it_to_finish() -> None:
    call = Call(Conversation(make_plan(False), config(greeting=GreetingMode.WAIT))).start()
    last = call.audio(T0 + 800 * MS, frames=75)  # 1.5 s greeting, real time
    answer_after_eos(call, 0, ttfb_ms=700, frames=5)
    call.run_until(T0 + 10_000 * MS)
    (greeting,) = call.samples(Metric.GREETING)
    assert greeting.ok and greeting.value_ms == 800.0 and greeting.turn_index is None
    (report,) = call.greetings()
    assert report.latency_ms == 800.0 and not report.barged
    assert report.answer is not None and report.answer.frames == 75
    first = call.first_frame_of(0)
    assert first.due_ns == last + 400 * MS  # quiet gap after the greeting's last frame
    assert all(f.kind is FrameKind.TAIL for f, _ in call.sent_frames if f.slot < first.slot)
    assert [s.value_ms for s in call.samples(Metric.TTFB)] == [700.0]  # never the greeting


def test_no_greeting_means_the_first_turn_starts_after_the_greeting_timeout() -> None:
    cfg = config(greeting=GreetingMode.WAIT, greeting_timeout_ms=1500)
    call = Call(Conversation(make_plan(False), cfg)).start()
    call.run_until(T0 + 1600 * MS)
    assert call.samples(Metric.GREETING) == []
    (report,) = call.greetings()
    assert report.latency_ms is None and report.answer is None
    assert call.first_frame_of(0).due_ns == T0 + 1500 * MS
    assert call.conv.counters.greeting_absent == 1


def test_barging_the_greeting_is_a_barge_in_not_a_ttfb() -> None:
    cfg = config(greeting=GreetingMode.BARGE, barge_after_ms=600)
    call = Call(Conversation(make_plan(True), cfg)).start()
    call.audio(T0 + 500 * MS, frames=250)  # a 5 s greeting that honours StopAudio:
    call.on_sent(speech_of(0), lambda f, t: call.stop_agent(t + 150 * MS))
    call.run_until(T0 + 2_000 * MS)
    first = call.first_frame_of(0)
    assert first.due_ns == T0 + 1100 * MS  # greeting began at 500 ms, + 600 ms
    (barge,) = call.samples(Metric.BARGE_IN)
    assert barge.ok and barge.value_ms == 150.0 and barge.turn_index == 0
    (greeting,) = call.greetings()
    assert greeting.barged
    assert call.samples(Metric.TTFB) == []


# -- barge-in ------------------------------------------------------------------------------


def barge_call(**overrides: object) -> tuple[Call, int]:
    """Turn 0 answered 600 ms after EOS with 6 s of real-time audio; turn 1 barges in."""
    cfg = config(barge_after_ms=1000, **overrides)
    call = Call(Conversation(make_plan(False, True), cfg)).start()
    answer_after_eos(call, 0, ttfb_ms=600, frames=300)
    return call, 600


def test_barge_in_latency_by_stop_signal() -> None:
    call, _ = barge_call()
    stop_after = 230 * MS
    call.on_sent(speech_of(1), lambda f, t: call.stop_agent(t + stop_after))
    call.run_until(T0 + 6_000 * MS)
    (eos0,) = call.sent_ns(eos_of(0))
    answer_start = eos0 + 600 * MS
    first = call.first_frame_of(1)
    assert first.due_ns == answer_start + 1000 * MS
    (b_sent,) = call.sent_ns(speech_of(1))
    (barge,) = call.samples(Metric.BARGE_IN)
    assert barge.ok and barge.value_ms == 230.0 and barge.at_ns == b_sent + stop_after
    call.run_until(T0 + 30_000 * MS)
    turn1 = call.turns()[1]
    assert turn1.barge is not None and turn1.barge.outcome is BargeOutcome.STOPPED
    # real-time audio: the caller heard it until the stop flushed the (one-frame) buffer
    assert turn1.barge.audible_talk_over_ms == 230.0
    assert turn1.barge.interrupted_turn == 0
    assert call.turns()[0].ok  # the interrupted turn was answered: success


def test_barge_in_by_quiet_gap_excludes_the_gap() -> None:
    call, _ = barge_call()
    # no stop signal: the agent's audio just ends, its last frame arriving at B + 180 ms
    call.on_sent(speech_of(1), lambda f, t: call.stop_agent(t + 180 * MS, signal=False))
    answer_after_eos(call, 1, ttfb_ms=700, frames=10)
    call.run_until(T0 + 30_000 * MS)
    (b_sent,) = call.sent_ns(speech_of(1))
    (barge,) = call.samples(Metric.BARGE_IN)
    assert barge.ok and barge.value_ms == 180.0  # not 180 + 400
    assert barge.at_ns == b_sent + 180 * MS + 400 * MS  # decided when the gap completed
    turn1 = call.turns()[1]
    assert turn1.barge is not None and turn1.barge.outcome is BargeOutcome.QUIET
    assert turn1.barge.last_audio_ns == b_sent + 180 * MS
    assert turn1.barge.audible_talk_over_ms == 200.0  # heard until the last frame ended
    # B + 20 … B + 180 overlapped the caller's speech (the frame read at B came first)
    assert turn1.talk_over.frames == 9
    assert turn1.ttfb_ms == 700.0 and turn1.ok


def test_a_reply_right_after_the_stop_signal_is_a_new_answer_not_talk_over() -> None:
    """Agent audio after its stop signal starts a new answer, even within the quiet gap:
    while the caller still speaks it is that turn's talk-over, after its EOS the answer."""
    # the barging utterance: speech frames 5..14, EOS 180 ms after the first speech frame
    short = TurnAudio(key="short.pcm", frame_count=20, speech_start_frame=5, eos_frame=14)
    cfg = config(barge_after_ms=1000)
    call = Call(Conversation(make_plan(False, True, audio=short), cfg)).start()
    answer_after_eos(call, 0, ttfb_ms=600, frames=300)

    def stop_then_reply(frame: Frame, sent_ns: int) -> None:
        call.stop_agent(sent_ns + 120 * MS)  # StopAudio 120 ms into the barge speech
        call.audio(sent_ns + 160 * MS, 30)  # the next reply 40 ms later (< BARGE_QUIET_MS)

    call.on_sent(speech_of(1), stop_then_reply)
    call.run_until(T0 + 30_000 * MS)
    (b_sent,) = call.sent_ns(speech_of(1))
    (eos1,) = call.sent_ns(eos_of(1))
    (barge,) = call.samples(Metric.BARGE_IN)
    assert barge.ok and barge.value_ms == 120.0
    turn1 = call.turns()[1]
    assert turn1.barge is not None and turn1.barge.outcome is BargeOutcome.STOPPED
    assert turn1.barge.audible_talk_over_ms == 120.0  # not extended by the new reply
    # over the caller's speech: the interrupted answer until the stop (B+20 … B+120) and
    # the new reply's first two frames (B+160, B+180 = EOS)
    assert eos1 == b_sent + 180 * MS and turn1.talk_over.frames == 6 + 2
    assert turn1.ttfb_ms == 20.0  # the new reply's first frame after EOS (B + 200 ms)
    assert turn1.answer is not None and turn1.answer.frames == 28 and turn1.ok


def test_barge_in_ignored_when_audio_keeps_coming_through_the_window() -> None:
    call, _ = barge_call(first_byte_timeout_ms=2000)
    call.hooks.clear()
    answer_after_eos(call, 0, ttfb_ms=600, frames=400)  # 8 s, no reaction to the barge
    call.run_until(T0 + 12_000 * MS)
    (b_sent,) = call.sent_ns(speech_of(1))
    (barge,) = call.samples(Metric.BARGE_IN)
    assert barge.failure is Failure.BARGE_IGNORED
    assert b_sent + 2000 * MS < barge.at_ns <= b_sent + 2020 * MS  # the first frame past it
    call.run_until(T0 + 40_000 * MS)
    turn1 = call.turns()[1]
    assert turn1.failure is Failure.BARGE_IGNORED and not turn1.ok
    assert turn1.barge is not None and turn1.barge.outcome is BargeOutcome.IGNORED
    assert call.samples(Metric.TURN)[1].failure is Failure.BARGE_IGNORED


def test_burst_answer_stop_flushes_what_the_caller_would_still_hear() -> None:
    call, _ = barge_call()
    call.hooks.clear()
    # 6 s of audio in 300 ms; the agent sends StopAudio 250 ms after the barge speech
    answer_after_eos(call, 0, ttfb_ms=600, frames=300, every_ns=1 * MS)
    call.on_sent(speech_of(1), lambda f, t: call.deliver(t + 250 * MS, STOP))
    call.run_until(T0 + 30_000 * MS)
    turn1 = call.turns()[1]
    barge = turn1.barge
    assert barge is not None and barge.outcome is BargeOutcome.STOPPED
    assert barge.latency_ms == 250.0
    assert barge.audible_talk_over_ms == 250.0  # buffer had seconds left; the stop cut it


def test_burst_answer_without_stop_is_heard_to_the_end() -> None:
    call, _ = barge_call()
    call.hooks.clear()
    # 3 s of audio in 150 ms, then nothing; no stop signal
    answer_after_eos(call, 0, ttfb_ms=600, frames=150, every_ns=1 * MS)
    answer_after_eos(call, 1, ttfb_ms=650, frames=10)
    call.run_until(T0 + 30_000 * MS)
    (eos0,) = call.sent_ns(eos_of(0))
    playback_end = eos0 + 600 * MS + 3000 * MS
    (b_sent,) = call.sent_ns(speech_of(1))
    turn1 = call.turns()[1]
    barge = turn1.barge
    assert barge is not None and barge.outcome is BargeOutcome.PLAYED_OUT
    assert barge.latency_ms is None
    assert barge.audible_talk_over_ms == (playback_end - b_sent) / MS
    assert call.samples(Metric.BARGE_IN) == []  # no latency to report, no failure
    assert turn1.ok


def test_burst_answer_without_stop_still_playing_after_the_window_is_ignored() -> None:
    call, _ = barge_call(first_byte_timeout_ms=1500)
    call.hooks.clear()
    answer_after_eos(call, 0, ttfb_ms=600, frames=250, every_ns=1 * MS)  # 5 s in 250 ms
    call.run_until(T0 + 30_000 * MS)
    (b_sent,) = call.sent_ns(speech_of(1))
    (barge,) = call.samples(Metric.BARGE_IN)
    assert barge.failure is Failure.BARGE_IGNORED and barge.at_ns == b_sent + 1500 * MS


def test_a_capped_turn_has_no_trailing_silence() -> None:
    plan = make_plan(False)
    capped = PlannedTurn(
        index=0,
        scenario="demo",
        audio=UTTERANCE,
        barge=False,
        speech_start_frame=5,
        eos_frame=14,
        last_frame=14,
    )
    call = Call(Conversation(TurnPlan(plan.scenario, (capped,)), config())).start()
    answer_after_eos(call, 0, ttfb_ms=400, frames=5)
    call.run_until(T0 + 5_000 * MS)
    frames = [f for f, _ in call.sent_frames]
    assert [f.index for f in frames[:15]] == list(range(15)) and frames[14].eos
    assert frames[15].kind is FrameKind.TAIL
    assert call.conv.done


def test_the_barging_turn_gets_its_own_ttfb_after_the_interruption() -> None:
    call, _ = barge_call()
    call.on_sent(speech_of(1), lambda f, t: call.stop_agent(t + 200 * MS))
    answer_after_eos(call, 1, ttfb_ms=750, frames=10)
    call.run_until(T0 + 30_000 * MS)
    assert [s.value_ms for s in call.samples(Metric.TTFB)] == [600.0, 750.0]
    assert all(t.ok for t in call.turns())


def test_barge_skipped_when_the_answer_ended_first() -> None:
    cfg = config(barge_after_ms=1000)
    call = Call(Conversation(make_plan(False, True), cfg)).start()
    answer_after_eos(call, 0, ttfb_ms=600, frames=10)  # 200 ms answer: over before 1 s
    call.run_until(T0 + 30_000 * MS)
    turn1 = call.turns()[1]
    assert turn1.barge_scheduled and turn1.barge is None
    assert call.conv.counters.barge_skipped == 1


# -- the connection drops ------------------------------------------------------------------


def test_closed_mid_turn_fails_the_turn() -> None:
    call = Call(Conversation(make_plan(False, False), config())).start()
    call.run_until(T0 + 1_200 * MS)  # after EOS, no answer yet
    call.conv.closed(call.now_ns, 1006, "abnormal")
    events = call.conv.events()
    (sample,) = [e for e in events if isinstance(e, Sample)]
    assert sample.metric is Metric.TURN and sample.failure is Failure.CLOSED_MID_TURN
    assert "1006" in sample.detail
    (report,) = [e for e in events if isinstance(e, TurnReport)]
    assert report.close_code == 1006 and report.ttfb_ms is None
    assert call.conv.done and call.conv.frames_due(call.now_ns + MS) == []


def test_a_protocol_error_fails_the_turn_by_its_own_name() -> None:
    call = Call(Conversation(make_plan(False, False), config())).start()
    call.run_until(T0 + 1_200 * MS)
    call.conv.closed(call.now_ns, 1009, "frame too big", failure=Failure.PROTOCOL_ERROR)
    (sample,) = [e for e in call.conv.events() if isinstance(e, Sample)]
    assert sample.metric is Metric.TURN and sample.failure is Failure.PROTOCOL_ERROR
    assert "1009" in sample.detail


def test_closed_during_a_barge_in_ends_it_as_closed() -> None:
    call, _ = barge_call()
    call.run_until(T0 + 2_900 * MS)
    assert call.conv.turn_index == 1
    call.conv.closed(call.now_ns, 1001, "going away")
    report = [e for e in call.conv.events() if isinstance(e, TurnReport)][-1]
    assert report.barge is not None and report.barge.outcome is BargeOutcome.CLOSED
    assert report.failure is Failure.CLOSED_MID_TURN


def test_closed_after_the_answer_finished_is_not_a_failure() -> None:
    # quiet gap 410 ms: the answer is over 10 ms before the next slot would start turn 1
    call = Call(Conversation(make_plan(False, False), config(barge_quiet_ms=410))).start()
    answer_after_eos(call, 0, ttfb_ms=500, frames=5)
    eos_ns = T0 + 49 * 20 * MS
    last = eos_ns + 500 * MS + 4 * 20 * MS
    call.run_until(last + 405 * MS)
    assert call.conv.turn_index == 0 and call.conv.phase is Phase.ANSWERING
    call.conv.closed(last + 415 * MS, 1000, "")
    (report,) = [e for e in call.conv.events() if isinstance(e, TurnReport)]
    assert report.ok and report.close_code is None and report.ended_ns == last + 20 * MS


def test_closed_during_the_greeting_reports_the_lost_turn() -> None:
    call = Call(Conversation(make_plan(False), config(greeting=GreetingMode.WAIT))).start()
    call.run_until(T0 + 300 * MS)
    call.conv.closed(T0 + 300 * MS, 1011, "server error")
    events = call.conv.events()
    assert isinstance(events[0], GreetingReport)
    turn_samples = [e for e in events if isinstance(e, Sample)]
    assert [(s.metric, s.failure) for s in turn_samples] == [(Metric.TURN, Failure.CLOSED_MID_TURN)]


def test_connect_sample_and_counters() -> None:
    conv = Conversation(make_plan(False), config())
    conv.start(T0, connect_started_ns=T0 - 42 * MS)
    (connect,) = conv.events()
    assert isinstance(connect, Sample) and connect.metric is Metric.CONNECT
    assert connect.value_ms == 42.0 and connect.ok and connect.name == "connect"
    for kind in (InboundKind.TRANSCRIPT, InboundKind.END, InboundKind.OTHER):
        conv.receive(Inbound(kind), T0 + MS)
    conv.receive(Inbound(InboundKind.MALFORMED, detail="bad json"), T0 + MS)
    conv.receive(Inbound(InboundKind.AUDIO, audio_bytes=0), T0 + MS)
    counters = conv.counters
    assert counters.inbound_transcript == counters.inbound_end == counters.inbound_other == 1
    assert counters.inbound_malformed == 1 and counters.empty_audio == 1
    assert conv.events() == []  # none of these is a measurement
