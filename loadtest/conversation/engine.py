"""The per-caller conversation state machine (sans-I/O): what to send when, what it measured.

One :class:`Conversation` per WebSocket connection. It never reads a clock, sleeps or touches
a socket: every method takes the monotonic instant (``time.monotonic_ns()`` at the edge) at
which something happened. Call order, for the edge (:mod:`loadtest.runtime.caller` is the one
that drives it)::

    conv = Conversation(plan, config)          # plan = build_plan(choose_scenario(...), ...)
    # connect; on success, with the upgrade's start instant:
    conv.start(now_ns, connect_started_ns=t)   # before the first message is read
    # for every message, in the socket's readiness callback, stamped when its read returned:
    conv.receive(protocol.classify(msg), arrival_ns)
    # when the frame scheduler wakes for this call (at conv.next_deadline_ns()):
    for frame in conv.frames_due(monotonic_ns()):
        send(encoded[frame])                   # UTTERANCE: frame.audio_key/frame.index
        conv.sent(frame, monotonic_ns())       # every frame, in order, right after sending
    forward(conv.events())                     # Samples → events.request; reports → stats
    # when the connection drops (a failed send or a close read), once:
    conv.closed(monotonic_ns(), code, reason); forward(conv.events())
    # when the run ends: finish the current turn, then hang up (any time after start):
    conv.hang_up_after_turn()
    # when the caller is stopped before the conversation is done (the stop grace ran out):
    conv.cut(monotonic_ns()); forward(conv.events())
    # the call is over when conv.next_deadline_ns() is None (conv.done)

Rules the edge keeps: ``start`` first; ``sent`` for every frame ``frames_due`` returned, in
order, before calling ``frames_due`` again (``RuntimeError`` otherwise); ``receive`` gets the
arrival instant stamped when the message was read, promptly (the engine classifies by that
stamp, never by when it is told, so a stale message never becomes a TTFB); after ``done`` the
edge closes the socket normally (code 1000) and may still call ``closed`` (a no-op).

The caller streams continuously on one grid anchored at ``start``: slot n is due at
``start + n × chunk_ms``, so frame k of a turn that starts at slot s is due at
``t0 + k × chunk_ms`` with ``t0`` = slot s's due instant. A late wake-up never shifts the
grid: ``frames_due`` returns every frame whose deadline has passed, each with its own
``due_ns`` (send them back to back). Before turn 0 (waiting for / hearing the greeting) and
after each turn's recording, slots carry comfort-noise TAIL frames until the next turn
starts (when: :mod:`loadtest.conversation.handoff`). The receive callback and the scheduler
both call into the same object; under gevent they run on one event loop and never at once,
so no lock is needed. ``events()`` may be drained after either (``receive`` decides TTFB and
barge-in samples too).
"""

from __future__ import annotations

from collections import deque

from loadtest.conversation.config import ConversationConfig, GreetingMode
from loadtest.conversation.frames import Frame, FrameKind, Phase
from loadtest.conversation.handoff import Handoff, TurnTaking
from loadtest.conversation.measure import Counters, Event, Failure, Metric
from loadtest.conversation.plan import TurnPlan
from loadtest.conversation.playback import PlaybackBuffer, audio_duration_ns
from loadtest.conversation.recorder import Recorder
from loadtest.conversation.tracks import AudioTrack, BargeTracker, TurnState
from loadtest.protocols.base import Inbound, InboundKind

__all__ = ["Conversation"]

_NS_PER_MS = 1_000_000
_INBOUND_COUNTER = {
    InboundKind.AUDIO: "inbound_audio",
    InboundKind.STOP: "inbound_stop",
    InboundKind.TRANSCRIPT: "inbound_transcript",
    InboundKind.END: "inbound_end",
    InboundKind.OTHER: "inbound_other",
    InboundKind.MALFORMED: "inbound_malformed",
}


class Conversation:
    """One simulated caller's conversation over one connection. See the module docstring."""

    def __init__(self, plan: TurnPlan, config: ConversationConfig) -> None:
        self._plan = plan
        self._cfg = config
        self._chunk_ns = config.chunk_ms * _NS_PER_MS
        self._rules = TurnTaking.from_config(config)
        self._rec = Recorder(plan.scenario, config.first_byte_timeout_ms)
        self._started = False
        self._done = False
        self._hang_up = False  # end the call where the next turn would begin
        self._start_ns = 0
        self._next_slot = 0
        self._tail_frames = 0
        self._playback = PlaybackBuffer(config.agent_sample_rate, 0)
        self._last_audio_ns: int | None = None
        self._greeting: AudioTrack | None = None
        self._turn: TurnState | None = None
        self._inflight: deque[Frame] = deque()
        self._anchors_inflight = 0  # first-speech / EOS frames handed out, not yet sent()
        self._pending: list[tuple[Inbound, int]] = []
        self._counts = dict.fromkeys(Counters.__dataclass_fields__, 0)
        self.close_code: int | None = None
        self.close_reason = ""

    # -- the edge's API, in call order ---------------------------------------------------

    def start(self, now_ns: int, *, connect_started_ns: int | None = None) -> None:
        """The connection is up at ``now_ns``: anchor the frame grid and the greeting clock.

        With ``connect_started_ns`` (when the connect attempt began) a ``connect`` Sample of
        ``now_ns − connect_started_ns`` is emitted. Call once, before the first message is read.
        """
        if self._started:
            raise RuntimeError("Conversation.start() was already called")
        self._started = True
        self._start_ns = now_ns
        self._playback = PlaybackBuffer(self._cfg.agent_sample_rate, now_ns)
        if connect_started_ns is not None:
            self._rec.sample(Metric.CONNECT, (now_ns - connect_started_ns) / _NS_PER_MS, now_ns)
        if self._cfg.greeting is GreetingMode.OFF:
            self._begin_turn(0, barge=False, interrupted=None, due_ns=now_ns)

    def next_deadline_ns(self) -> int | None:
        """When the next frame is due (the edge sleeps until then); ``None`` once done."""
        if not self._started or self._done:
            return None
        return self._start_ns + self._next_slot * self._chunk_ns  # _due_ns: every frame

    def frames_due(self, now_ns: int) -> list[Frame]:
        """Frames whose deadline is at or before ``now_ns``, oldest first (empty if none).

        Also applies everything time decides (TTFB timeout, quiet gaps, barge-in window) as
        of ``now_ns``. May finish the conversation (:attr:`done`) instead of returning a frame.
        """
        if not self._started:
            self._require_started("frames_due")
        if self._inflight:
            raise RuntimeError(
                f"sent() was not called for {len(self._inflight)} frame(s) of the last frames_due()"
            )
        if self._done:
            return []
        self._advance(now_ns)
        frames: list[Frame] = []
        start_ns, chunk_ns = self._start_ns, self._chunk_ns  # _due_ns, inlined: every frame
        while not self._done:
            due_ns = start_ns + self._next_slot * chunk_ns
            if due_ns > now_ns:
                break
            frame = self._frame_for_slot(due_ns)
            if frame is None:
                break
            frames.append(frame)
            self._next_slot += 1
            if frame.first_speech or frame.eos:
                self._anchors_inflight += 1
        self._inflight.extend(frames)
        return frames

    def sent(self, frame: Frame, sent_ns: int) -> int:
        """``frame`` left at ``sent_ns``; returns its lateness (``sent_ns − due_ns``) in ns.

        The send instant of the first speech frame is the barge-in reference and that of the
        EOS frame is the end of speech: stamp right after the send call returned.
        """
        lateness_ns = sent_ns - frame.due_ns
        if self._done:
            return lateness_ns
        inflight = self._inflight
        if not inflight or inflight[0] is not frame:
            raise RuntimeError("sent() must report the frames of frames_due() in their order")
        inflight.popleft()
        turn = self._turn
        if (
            frame.kind is FrameKind.UTTERANCE
            and turn is not None
            and frame.turn_index == turn.plan.index
        ):
            if frame.index == 0:
                turn.started_ns = sent_ns
            if frame.first_speech:
                turn.speech_ns = sent_ns
                turn.speech_media_ms = frame.slot * self._cfg.chunk_ms
                if turn.barge is not None:
                    turn.barge.speech_sent(sent_ns)
            if frame.eos:
                turn.eos_ns = sent_ns
                turn.eos_media_ms = frame.slot * self._cfg.chunk_ms
        if frame.first_speech or frame.eos:
            self._anchors_inflight -= 1
            if not self._anchors_inflight:
                self._replay_pending()
        return lateness_ns

    def receive(self, inbound: Inbound, arrival_ns: int) -> None:
        """A classified agent message that was read at ``arrival_ns``.

        Messages that arrive while a first-speech or EOS frame is between :meth:`frames_due`
        and :meth:`sent` are held, and classified once its send instant is known.
        """
        self._require_started("receive")
        if self._done:
            return
        self._counts[_INBOUND_COUNTER[inbound.kind]] += 1
        if self._anchors_inflight:
            self._pending.append((inbound, arrival_ns))
            return
        self._handle(inbound, arrival_ns)

    def closed(
        self,
        now_ns: int,
        code: int | None = None,
        reason: str = "",
        *,
        failure: Failure = Failure.CLOSED_MID_TURN,
    ) -> None:
        """The connection dropped (or was closed) at ``now_ns``; the conversation ends.

        A turn that had not completed (its answer over, or timed out) fails with ``failure``
        (``closed_mid_turn``; ``protocol_error`` when the caller failed the connection because
        the agent broke the WebSocket protocol) and the code and reason in its report; an
        undecided barge-in ends ``closed``. Closing during the greeting fails turn 0. Planned
        turns that never started are not reported. A no-op once :attr:`done`.
        """
        if not self._started or self._done:
            self._done = True
            return
        self.close_code, self.close_reason = code, reason
        self._anchors_inflight = 0
        self._inflight.clear()
        self._replay_pending()
        self._advance(now_ns)
        turn = self._turn
        if turn is None:
            self._rec.greeting_ended(
                self._greeting, self._start_ns, barged=False, truncated=False, ended_ns=now_ns
            )
            turn = TurnState(plan=self._plan.turns[0], t0_ns=now_ns)
        answered = turn.answer is not None or turn.ambiguous
        if turn.eos_ns is not None and turn.timed_out:
            self._rec.turn_ended(turn, turn.eos_ns + self._rules.timeout_ns)
        elif turn.eos_ns is not None and answered and now_ns >= self._quiet_at_ns():
            self._rec.turn_ended(turn, self._playback.end_ns)
        else:
            self._rec.turn_ended(turn, now_ns, close=(code, reason), close_failure=failure)
        self._done = True

    def hang_up_after_turn(self) -> None:
        """The run is ending: finish the current turn — its answer measured and heard, or
        timed out — then end the conversation (:attr:`done`) where the next turn would have
        begun, without barging in; before turn 0, end at the next frame. Idempotent."""
        self._hang_up = True

    def cut(self, now_ns: int) -> None:
        """The caller was stopped at ``now_ns`` before the conversation was done (the run's
        stop grace ran out); the conversation ends.

        What time decided up to ``now_ns`` stands (a TTFB timeout). The current turn's
        :class:`TurnReport` comes with ``cut=True`` and without a ``turn`` Sample: the run's
        end, not the agent, ended it. Samples decided before stay; an undecided barge-in is
        dropped. A no-op once :attr:`done`.
        """
        if not self._started or self._done:
            self._done = True
            return
        self._anchors_inflight = 0
        self._inflight.clear()
        self._replay_pending()
        self._advance(now_ns)
        if self._turn is not None:
            self._rec.turn_cut(self._turn, now_ns)
        self._done = True

    def events(self) -> list[Event]:
        """Drain the measurements decided so far, in the order they were decided."""
        return self._rec.drain()

    @property
    def has_events(self) -> bool:
        """:meth:`events` would return something (checked at every frame: cheaper than it)."""
        return self._rec.pending

    # -- state for the edge ----------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The last turn finished or the connection closed: stop sending and close."""
        return self._done

    @property
    def phase(self) -> Phase:
        if not self._started:
            return Phase.NOT_STARTED
        if self._done:
            return Phase.DONE
        turn = self._turn
        if turn is None:
            return Phase.GREETING
        if turn.eos_ns is None:
            return Phase.SPEAKING
        if turn.answer is None and not turn.ambiguous:
            return Phase.AWAITING_ANSWER
        return Phase.ANSWERING

    @property
    def turn_index(self) -> int | None:
        """The current turn, ``None`` before turn 0."""
        return None if self._turn is None else self._turn.plan.index

    @property
    def plan(self) -> TurnPlan:
        return self._plan

    @property
    def counters(self) -> Counters:
        return Counters(**self._counts)

    # -- scheduling --------------------------------------------------------------------------

    def _due_ns(self, slot: int) -> int:
        return self._start_ns + slot * self._chunk_ns

    def _frame_for_slot(self, due_ns: int) -> Frame | None:
        turn = self._turn
        if turn is None:
            if self._hang_up:
                self._rec.greeting_ended(
                    self._greeting, self._start_ns, barged=False, truncated=False, ended_ns=due_ns
                )
                self._done = True
                return None
            handoff = self._greeting_handoff(due_ns)
            if handoff is None:
                return self._tail_frame(due_ns, -1)
            self._rec.greeting_ended(
                self._greeting,
                self._start_ns,
                barged=handoff.barge,
                truncated=handoff.truncated,
                ended_ns=handoff.ended_ns,
            )
            turn = self._begin_turn(0, barge=handoff.barge, interrupted=None, due_ns=due_ns)
            return self._utterance_frame(turn, due_ns)
        plan = turn.plan
        if turn.next_frame <= plan.eos_frame:
            return self._utterance_frame(turn, due_ns)
        if turn.eos_ns is not None:
            handoff = self._turn_handoff(turn, due_ns)
            if handoff is not None:
                self._rec.turn_ended(turn, handoff.ended_ns, truncated=handoff.truncated)
                if plan.index + 1 == len(self._plan.turns) or self._hang_up:
                    self._done = True
                    return None
                turn = self._begin_turn(
                    plan.index + 1, barge=handoff.barge, interrupted=plan.index, due_ns=due_ns
                )
                return self._utterance_frame(turn, due_ns)
        if turn.next_frame <= plan.last_frame:  # the recording's trailing silence
            return self._utterance_frame(turn, due_ns)
        return self._tail_frame(due_ns, plan.index)

    def _utterance_frame(self, turn: TurnState, due_ns: int) -> Frame:
        plan, index = turn.plan, turn.next_frame
        turn.next_frame += 1
        return Frame(
            slot=self._next_slot,
            due_ns=due_ns,
            kind=FrameKind.UTTERANCE,
            turn_index=plan.index,
            audio_key=plan.audio.key,
            index=index,
            speech=plan.speech_start_frame <= index <= plan.eos_frame,
            first_speech=index == plan.speech_start_frame,
            eos=index == plan.eos_frame,
        )

    def _tail_frame(self, due_ns: int, turn_index: int) -> Frame:
        self._tail_frames += 1
        return Frame(
            slot=self._next_slot,
            due_ns=due_ns,
            kind=FrameKind.TAIL,
            turn_index=turn_index,
            audio_key=None,
            index=self._tail_frames - 1,
        )

    def _quiet_at_ns(self) -> int:
        return self._rules.quiet_at_ns(self._last_audio_ns, self._playback.end_ns)

    def _greeting_handoff(self, due_ns: int) -> Handoff | None:
        greeting = self._greeting
        handoff = self._rules.after_greeting(
            self._start_ns,
            None if greeting is None else greeting.first_ns,
            due_ns,
            barge_next=self._plan.turns[0].barge,
            quiet_at_ns=self._quiet_at_ns(),
            playback_end_ns=self._playback.end_ns,
        )
        if handoff is not None and greeting is None:
            self._counts["greeting_absent"] += 1
        return handoff

    def _turn_handoff(self, turn: TurnState, due_ns: int) -> Handoff | None:
        index = turn.plan.index + 1
        barge_next = index < len(self._plan.turns) and self._plan.turns[index].barge
        return self._rules.after_turn(
            turn,
            due_ns,
            barge_next=barge_next and not self._hang_up,
            quiet_at_ns=self._quiet_at_ns(),
            playback_end_ns=self._playback.end_ns,
        )

    def _begin_turn(
        self, index: int, *, barge: bool, interrupted: int | None, due_ns: int
    ) -> TurnState:
        plan = self._plan.turns[index]
        turn = TurnState(plan=plan, t0_ns=due_ns)
        if barge:
            turn.barge = BargeTracker(
                interrupted_turn=interrupted,
                started_ns=due_ns,
                last_audio_ns=self._last_audio_ns,
                playback_end_ns=self._playback.end_ns,
                window_ns=self._rules.timeout_ns,
                quiet_ns=self._rules.quiet_ns,
            )
        elif plan.barge:
            self._counts["barge_skipped"] += 1
        self._turn = turn
        return turn

    # -- inbound -----------------------------------------------------------------------------

    def _replay_pending(self) -> None:
        pending, self._pending = self._pending, []
        for inbound, arrival_ns in pending:
            self._handle(inbound, arrival_ns)

    def _handle(self, inbound: Inbound, arrival_ns: int) -> None:
        self._advance(arrival_ns)
        if inbound.kind is InboundKind.AUDIO:
            if inbound.audio_bytes <= 0:
                self._counts["empty_audio"] += 1
                return
            self._playback.add(arrival_ns, inbound.audio_bytes)
            last = self._last_audio_ns
            self._last_audio_ns = arrival_ns if last is None else max(last, arrival_ns)
            duration_ns = audio_duration_ns(inbound.audio_bytes, self._cfg.agent_sample_rate)
            self._route_audio(arrival_ns, duration_ns)
        elif inbound.kind is InboundKind.STOP:
            # judged before the flush: was anything playing, or was the agent just quiet?
            silent = arrival_ns >= self._quiet_at_ns()
            self._playback.flush(arrival_ns)
            self._route_stop(arrival_ns, silent)
        # TRANSCRIPT, END, OTHER and MALFORMED are counted and never move the clock: END
        # tokens also match e.g. the caller's own final transcript, so trusting them to end
        # an answer would start the next turn over the agent.

    def _route_audio(self, arrival_ns: int, duration_ns: int) -> None:
        turn = self._turn
        if turn is None:  # before turn 0: the greeting
            if self._greeting is None:
                self._greeting = AudioTrack(arrival_ns, duration_ns)
                latency_ms = (arrival_ns - self._start_ns) / _NS_PER_MS
                self._rec.sample(Metric.GREETING, latency_ms, arrival_ns)
            else:
                self._greeting.add(arrival_ns, duration_ns)
            return
        barge = turn.barge
        if barge is not None and barge.owns:  # the interrupted answer, still coming
            report = barge.on_audio(arrival_ns, self._playback.end_ns)
            if report is not None:
                self._rec.barge_decided(turn, report)
            if turn.in_talk_over(arrival_ns):
                turn.talk_over.add(arrival_ns, duration_ns)
            return
        eos_ns = turn.eos_ns
        if eos_ns is None or arrival_ns <= eos_ns:  # never an answer: it is not after EOS
            if turn.in_talk_over(arrival_ns):
                turn.talk_over.add(arrival_ns, duration_ns)
            else:
                self._counts["stray_audio_frames"] += 1
        elif turn.answer is not None:
            turn.answer.add(arrival_ns, duration_ns)
        elif turn.timed_out or turn.ambiguous:
            self._counts["stray_audio_frames"] += 1
        else:
            turn.answer = AudioTrack(arrival_ns, duration_ns)
            turn.ttfb_ms = (arrival_ns - eos_ns) / _NS_PER_MS
            self._rec.sample(Metric.TTFB, turn.ttfb_ms, arrival_ns, turn=turn)

    def _route_stop(self, arrival_ns: int, silent: bool) -> None:
        """A stop signal ends a barge-in only while the agent is talking. One that arrives
        while it is quiet (no audio for ``barge_quiet_ms``, nothing left to play) — many
        frameworks clear the line at every start of the caller's speech — is counted as
        ``stop_while_silent``, never a barge-in; any other is ``stray_stops``."""
        turn = self._turn
        barge = None if turn is None else turn.barge
        if (
            turn is not None
            and barge is not None
            and not silent
            and (barge.owns or barge.report is None)
        ):
            report = barge.on_stop(arrival_ns)
            if report is not None:
                self._rec.barge_decided(turn, report)
            return
        self._counts["stop_while_silent" if silent else "stray_stops"] += 1

    # -- time --------------------------------------------------------------------------------

    def _advance(self, now_ns: int) -> None:
        """Apply what the passage of time up to ``now_ns`` decides (idempotent)."""
        turn = self._turn
        if turn is None or self._done:
            return
        barge = turn.barge
        if barge is not None:
            report = barge.on_time(now_ns)
            if report is not None:
                self._rec.barge_decided(turn, report)
        eos_ns = turn.eos_ns
        if (
            eos_ns is None
            or turn.answer is not None
            or turn.timed_out
            or turn.ambiguous
            or now_ns < eos_ns + self._rules.timeout_ns
        ):
            return
        if barge is not None and barge.owns:
            turn.ambiguous = True  # the interrupted audio never stopped: no answer to time
            return
        turn.timed_out = True
        turn.failure = turn.failure or Failure.TTFB_TIMEOUT
        self._rec.sample(
            Metric.TTFB,
            self._rules.timeout_ns / _NS_PER_MS,
            eos_ns + self._rules.timeout_ns,
            turn=turn,
            failure=Failure.TTFB_TIMEOUT,
            detail=f"no agent audio within {self._cfg.first_byte_timeout_ms} ms of end of speech",
        )

    def _require_started(self, method: str) -> None:
        if not self._started:
            raise RuntimeError(f"Conversation.{method}() called before start()")
