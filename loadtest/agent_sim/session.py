"""One simulated call, as a sans-I/O state machine: caller messages in, actions out.

Call order (one :class:`AgentSession` per WebSocket connection)::

    session = AgentSession(connection_id, policy, rng, stats, codec=codec)  # after the upgrade
    actions = session.start(now_ns)             # once, before the first message
    actions = session.receive(message, now_ns)  # every inbound message, stamped when read
    actions = session.poll(now_ns)              # when next_deadline_ns() is reached
    session.next_deadline_ns()                  # re-read after every poll, and after a
                                                # receive that left session.replanned True
    session.close(now_ns)                       # when the connection ended
    session.take_records()                      # finished turns (ground truth), any time
    session.has_records                         # … whether there are any (cheap)

Perform the actions in order, right away: ``poll`` records ``now_ns`` as the send time of the
frames it returns, so take it just before writing. Times are ``time.monotonic_ns()`` values.

The wire protocol is the ``codec``'s business (:mod:`.codecs`): the session only sees the
stream description, caller audio decoded to PCM16, DTMF and other messages. A stream opens
with the caller's description (ACS ``AudioMetadata``, Twilio ``start``) or, for protocols
without one (raw PCM), at :meth:`AgentSession.start`.

Turn taking: the caller's audio goes through the shared streaming VAD in 20 ms frames. When
the VAD reports the end of speech (after the endpointing silence), the reply is scheduled at
*receive time of the last speech frame* + latency, so the configured latency is what the caller
should measure from its own last speech frame. Caller speech over a playing reply for
``barge_min_speech_ms`` is a barge-in: StopAudio is due at *receive time of the first barge
speech frame* + ``barge_latency_ms`` (mode ``stop``), later (``late``) or never (``ignore``);
the barge speech opens the next turn. Speech that resumes before a scheduled reply started
cancels that reply and continues the turn.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from loadtest.agent_sim.actions import (
    Abort,
    Action,
    Close,
    SendBinary,
    SendStop,
    SendText,
    TurnKind,
    TurnRecord,
)
from loadtest.agent_sim.codecs import AcsCodec, AgentCodec, Rejected, StreamOpen
from loadtest.agent_sim.config import FRAME_MS, BargeMode, FaultKind, Pace, ReplyPolicy
from loadtest.agent_sim.stats import AgentStats
from loadtest.agent_sim.turns import FRAME_NS, BargeCandidate, Playback, TurnState
from loadtest.audio.pcm import SAMPLE_WIDTH
from loadtest.audio.vad import SpeechSegmenter, VadEvent, VadEventKind
from loadtest.errors import AudioFormatError
from loadtest.protocols.base import (
    CallerAudio,
    CallerDtmf,
    CallerMetadata,
    WireMessage,
)

__all__ = ["CLOSE_UNSUPPORTED", "GARBAGE_LEAD_MS", "AgentSession", "Segmenter"]

CLOSE_UNSUPPORTED = 1003
"""Close code for an audio format the simulator cannot take (RFC 6455 "unsupported data")."""
CLOSE_FAULT = 1011
GARBAGE_LEAD_MS = 100
"""Malformed/binary fault messages precede the reply's first audio frame by this much."""
_RING = 64  # receive times kept for the last frames (VAD onset looks back a few frames)


class Segmenter(Protocol):
    """The streaming VAD the session needs (:class:`SpeechSegmenter`)."""

    last_speech_index: int | None

    @property
    def frame_bytes(self) -> int: ...

    def push(self, frame: bytes) -> VadEvent | None: ...

    def push_silent(self) -> VadEvent | None: ...


class AgentSession:
    """The simulated agent of one call (see the module docstring for the call order).

    Args:
        connection_id: from ``x-ms-call-connection-id`` (or generated); goes into records.
        policy: turn-taking, latency, barge-in and fault settings.
        rng: this call's random source (latency samples, fault draws, garbage bytes).
        stats: process-wide counters to increment.
        correlation_id: from ``x-ms-call-correlation-id``, if any.
        segmenter_factory: builds the VAD for a sample rate (default: the shared
            :class:`SpeechSegmenter` with ``policy.endpoint_silence_ms``).
        codec: the wire protocol (default: ACS in ``policy.casing``).
    """

    def __init__(
        self,
        connection_id: str,
        policy: ReplyPolicy,
        rng: random.Random,
        stats: AgentStats,
        *,
        correlation_id: str | None = None,
        segmenter_factory: Callable[[int, int], Segmenter] = SpeechSegmenter,
        codec: AgentCodec | None = None,
    ) -> None:
        self.connection_id = connection_id
        self.correlation_id = correlation_id
        self._policy = policy
        self._rng = rng
        self._stats = stats
        self._segmenter_factory = segmenter_factory
        self._codec: AgentCodec = codec if codec is not None else AcsCodec(policy.casing)
        self._audio_label = self._codec.labels[0]  # counted for every caller frame
        self.metadata: CallerMetadata | None = None
        self.stream_id: str | None = None
        self.bad_inputs: Counter[str] = Counter()
        self._vad: Segmenter | None = None
        self._vad_bytes = 0
        self._message_bytes = 0
        self._pending = bytearray()
        self._index = -1
        self._ring = [0] * _RING
        self._last_speech_rx_ns = 0
        self._open: TurnState | None = None
        self._queued: Playback | None = None
        self._play: Playback | None = None
        self._barge: BargeCandidate | None = None
        self._turns = 0
        self._closed = False
        self._records: list[TurnRecord] = []
        self.has_records = False  # the edge asks after every message; a plain attribute
        self.replanned = False  # … and this: whether receive() may have moved the deadline
        self._transcripts = False  # --transcripts, from when the stream opened
        self._opened_ns = 0  # when the stream opened: transcripts' offsets count from here
        if policy.pace is Pace.BURST:
            self._chunk_frames = policy.burst_ms // FRAME_MS
            self._chunk_ns = int(policy.burst_ms * 1_000_000 / policy.burst_speed)
        else:
            self._chunk_frames = 1
            self._chunk_ns = FRAME_NS

    @property
    def sample_rate(self) -> int | None:
        """The caller's sample rate once its stream was accepted, else ``None``."""
        return None if self.metadata is None else self.metadata.sample_rate

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ inputs

    def start(self, now_ns: int) -> list[Action]:
        """The connection is up at ``now_ns``: open the stream now if the protocol never
        describes it (raw PCM), so a greeting starts with the call. Returns actions (only
        ever a Close)."""
        opened = self._codec.implicit_open()
        if opened is None or self.metadata is not None or self._closed:
            return []
        return self._metadata(opened, now_ns)

    def receive(self, message: WireMessage, now_ns: int) -> list[Action]:
        """Take one caller message read at ``now_ns``; return actions (only ever a Close).

        Afterwards :attr:`replanned` is False when :meth:`next_deadline_ns` is what it was
        before and no turn finished — true of nearly every audio frame, so the edge can skip
        re-reading the deadline.
        """
        self.replanned = False
        if self._closed:
            return []
        parsed = self._codec.parse(message)
        stats = self._stats
        if isinstance(parsed, CallerAudio):
            stats.inbound_messages[self._audio_label] += 1
            stats.inbound_frames_total += 1
            if self._vad is None:
                self.replanned = True
                actions = self.start(now_ns)  # raw PCM: start() was not called
                if self._vad is None:
                    self._bad("audio_before_metadata")
                    return actions
            self._audio(parsed.pcm, parsed.silent, now_ns)
            return []
        self.replanned = True  # not audio: rare, so not worth telling apart
        _, open_label, dtmf_label = self._codec.labels
        if isinstance(parsed, Rejected):
            self._bad(parsed.reason)
            return []
        if isinstance(parsed, StreamOpen):
            stats.inbound_messages[open_label] += 1
            return self._metadata(parsed, now_ns)
        if isinstance(parsed, CallerDtmf):
            stats.inbound_messages[dtmf_label] += 1
            return []
        label = self._codec.other_label(parsed.kind)
        stats.inbound_messages[label or "other"] += 1
        if label is None:
            self._bad("unknown_kind")
        return []

    def note_bad_input(self, reason: str) -> None:
        """Count a bad input the edge detected (e.g. ``oversized``)."""
        self._bad(reason)

    def poll(self, now_ns: int) -> list[Action]:
        """Return what is due at ``now_ns`` (reply frames, StopAudio, fault messages)."""
        if self._closed:
            return []
        actions: list[Action] = []
        queued = self._queued
        if queued is not None and queued.turn.due_ns is not None and now_ns >= queued.turn.due_ns:
            self._start(queued, now_ns, actions)
        play = self._play
        if play is not None:
            self._advance(play, now_ns, actions)
        return actions

    def next_deadline_ns(self) -> int | None:
        """When :meth:`poll` has something to do next (``None``: wait for caller messages)."""
        if self._closed:
            return None
        best: int | None = None
        if self._queued is not None:
            best = self._queued.turn.due_ns
        if self._play is not None:
            due = self._play.next_deadline_ns()
            best = due if best is None else min(best, due)
        return best

    def close(self, now_ns: int) -> None:
        """The connection ended: finish every open turn (outcome ``closed``/``incomplete``)."""
        if self._open is not None:
            self._finish(self._open, "incomplete")
            self._open = None
        if self._queued is not None:
            self._finish(self._queued.turn, "closed")
            self._queued = None
        play = self._play
        if play is not None:
            done = play.next >= play.turn.frames_planned and now_ns >= play.end_ns
            stop_pending = play.stop_due_ns is not None and play.turn.stop_tx_ns is None
            self._finish(play.turn, "answered" if done and not stop_pending else "closed")
            self._play = None
        self._closed = True

    def take_records(self) -> list[TurnRecord]:
        """Finished turns since the last call, in the order they finished."""
        records, self._records = self._records, []
        self.has_records = False
        return records

    # ------------------------------------------------------------------ caller audio

    def _bad(self, reason: str) -> None:
        self.bad_inputs[reason] += 1
        self._stats.bad_inputs[reason] += 1

    def _metadata(self, opened: StreamOpen, now_ns: int) -> list[Action]:
        if self.metadata is not None:
            self._bad("duplicate_metadata")
            return []
        meta = opened.metadata
        try:
            self._codec.check_format(meta)
        except AudioFormatError as exc:
            self._bad("unsupported_format")
            self._closed = True
            return [Close(CLOSE_UNSUPPORTED, str(exc)[:120])]
        rate = meta.sample_rate
        self.metadata = meta
        self.stream_id = opened.stream_id
        self._vad = self._segmenter_factory(rate, self._policy.endpoint_silence_ms)
        self._vad_bytes = self._vad.frame_bytes
        if self._codec.declares_frame_size:
            self._message_bytes = rate * meta.frame_ms // 1000 * SAMPLE_WIDTH
        self._opened_ns = now_ns
        self._transcripts = self._policy.transcripts
        if self._policy.greeting_ms:
            turn = TurnState(TurnKind.GREETING, None)
            turn.due_ns = now_ns
            self._queued = self._playback(turn, now_ns, self._policy.greeting_frames)
        return []

    def _audio(self, pcm: bytes, silent: bool, now_ns: int) -> None:
        if self._message_bytes and len(pcm) != self._message_bytes:
            self._bad("wrong_size")
        size = self._vad_bytes
        if len(pcm) == size and not self._pending:
            self._push(pcm, silent, now_ns)
            return
        # Frames of another size are re-cut onto the VAD's 20 ms grid (all stamped now_ns).
        self._pending += pcm
        while len(self._pending) >= size:
            self._push(bytes(self._pending[:size]), silent, now_ns)
            del self._pending[:size]

    def _push(self, frame: bytes, silent: bool, now_ns: int) -> None:
        """One VAD frame; a frame the caller flagged silent (ACS ``silent: true``) is taken at
        its word, as production agents do, and not classified."""
        assert self._vad is not None
        self._index += 1
        index = self._index
        self._ring[index % _RING] = now_ns
        event = self._vad.push_silent() if silent else self._vad.push(frame)
        speech = self._vad.last_speech_index == index
        if speech:
            self._last_speech_rx_ns = now_ns
        if event is not None:
            self.replanned = True
            if event.kind is VadEventKind.SPEECH_START:
                start = event.frame_index
                rx_ns = self._ring[start % _RING] if index - start < _RING else now_ns
                self._speech_start(start, rx_ns, index - start + 1, now_ns)
            else:
                self._speech_end(event.frame_index, self._last_speech_rx_ns)
        elif speech and self._barge is not None:
            self.replanned = True
            self._barge.frames += 1
            self._check_barge(now_ns)

    def _playing(self, play: Playback | None, now_ns: int) -> bool:
        return (
            play is not None
            and play.turn.first_tx_ns is not None
            and play.turn.stop_tx_ns is None
            and now_ns < play.end_ns
        )

    def _open_turn(self, first_index: int, rx_ns: int) -> None:
        turn = TurnState(TurnKind.REPLY, self._turns)
        self._turns += 1
        turn.first_index = first_index
        turn.first_rx_ns = rx_ns
        self._open = turn

    def _speech_start(self, index: int, rx_ns: int, frames: int, now_ns: int) -> None:
        queued = self._queued
        if queued is not None:
            # The caller went on talking before the reply started: cancel it, the turn goes on.
            self._queued = None
            turn = queued.turn
            if turn.kind is TurnKind.GREETING:
                self._finish(turn, "cancelled")
                self._open_turn(index, rx_ns)
            else:
                turn.reopen()
                self._open = turn
            return
        if self._playing(self._play, now_ns):
            self._barge = BargeCandidate(index, rx_ns, frames)
            self._check_barge(now_ns)
            return
        self._open_turn(index, rx_ns)

    def _check_barge(self, now_ns: int) -> None:
        barge = self._barge
        if barge is None or barge.frames < self._policy.barge_min_frames:
            return
        self._barge = None
        play = self._play
        if play is not None and self._playing(play, now_ns):
            policy = self._policy
            turn = play.turn
            turn.barge_rx_ns = barge.rx_ns
            turn.barge_detected_ns = now_ns
            self._stats.barge_ins_total += 1
            if policy.barge_mode is not BargeMode.IGNORE:
                delay_ms = policy.barge_latency_ms
                if policy.barge_mode is BargeMode.LATE:
                    delay_ms += policy.barge_late_ms
                play.stop_due_ns = max(now_ns, barge.rx_ns + delay_ms * 1_000_000)
        self._open_turn(barge.start_index, barge.rx_ns)

    def _speech_end(self, index: int, rx_ns: int) -> None:
        if self._barge is not None:  # a blip over the reply, too short to be a barge-in
            self._barge = None
            return
        turn = self._open
        if turn is None:
            return
        self._open = None
        turn.last_index = index
        turn.last_rx_ns = rx_ns
        policy = self._policy
        latency_ms = policy.latency.sample_ms(self._rng)
        fault = policy.faults.draw_turn(self._rng)
        turn.latency_ms = latency_ms
        turn.fault = fault
        due_ns = rx_ns + round(latency_ms * 1_000_000)
        if fault is not None:
            self._stats.faults[fault.value] += 1
        if fault is FaultKind.STALL:
            turn.stall_ms = policy.faults.stall_ms
            due_ns += turn.stall_ms * 1_000_000
        turn.due_ns = due_ns
        if fault is FaultKind.SILENT:
            self._finish(turn, "silent")
            return
        start_ns = due_ns
        garbage: Action | None = None
        if fault is FaultKind.MALFORMED_JSON:
            garbage = SendText(self._codec.malformed(self.stream_id))
        elif fault is FaultKind.BINARY_GARBAGE:
            garbage = SendBinary(self._rng.randbytes(97))
        if garbage is not None:
            start_ns += GARBAGE_LEAD_MS * 1_000_000
        play = self._playback(turn, start_ns, policy.response_frames)
        play.garbage = garbage
        if fault in (FaultKind.CLOSE_1011, FaultKind.RESET):
            play.close_after = max(1, policy.response_frames // 2)
        self._queued = play

    # ------------------------------------------------------------------ replies

    def _playback(self, turn: TurnState, start_ns: int, frames: int) -> Playback:
        return Playback(turn, start_ns, frames, self._chunk_frames, self._chunk_ns)

    def _start(self, queued: Playback, now_ns: int, actions: list[Action]) -> None:
        self._queued = None
        old = self._play
        if old is not None:
            if old.stop_due_ns is not None and old.turn.stop_tx_ns is None:
                self._send_stop(old, now_ns, actions)
            self._finish(old.turn, "stopped" if old.turn.stop_tx_ns is not None else "superseded")
        self._play = queued
        if queued.garbage is not None:
            actions.append(queued.garbage)
            queued.turn.fault_tx_ns = now_ns
            queued.garbage = None

    def _transcript(self, first_tx_ns: int, frames: int) -> str | None:
        """The reply's transcript, sent with its first frame at ``first_tx_ns``."""
        return self._codec.transcript(
            self._policy.reply_text,
            self.stream_id,
            (first_tx_ns - self._opened_ns) / 1e6,
            frames * FRAME_MS,
        )

    def _send_stop(self, play: Playback, now_ns: int, actions: list[Action]) -> None:
        actions.append(SendStop())
        play.turn.stop_tx_ns = now_ns
        self._stats.stops_total += 1

    def _advance(self, play: Playback, now_ns: int, actions: list[Action]) -> None:
        turn = play.turn
        transcript = self._transcript if self._transcripts else None
        if play.send_due(now_ns, self._stats, transcript, actions):
            self._fault_close(play, now_ns, actions)
            return
        stop_due = play.stop_due_ns
        if stop_due is not None and now_ns >= stop_due and turn.stop_tx_ns is None:
            self._send_stop(play, now_ns, actions)
        if turn.stop_tx_ns is not None:
            self._finish(turn, "stopped")
            self._play = None
        elif play.next >= turn.frames_planned and stop_due is None and now_ns >= play.end_ns:
            self._finish(turn, "answered")
            self._play = None

    def _fault_close(self, play: Playback, now_ns: int, actions: list[Action]) -> None:
        turn = play.turn
        turn.fault_tx_ns = now_ns
        if turn.fault is FaultKind.RESET:
            actions.append(Abort())
            self._finish(turn, "fault_reset")
        else:
            actions.append(Close(CLOSE_FAULT, "injected fault: close mid-turn"))
            self._finish(turn, "fault_close")
        self._play = None
        self.close(now_ns)

    def _finish(self, turn: TurnState, outcome: str) -> None:
        if turn.kind is TurnKind.REPLY:
            self._stats.turns_total += 1
        record = turn.to_record(outcome, self.connection_id, self.correlation_id, self._policy)
        self._records.append(record)
        self.has_records = True
