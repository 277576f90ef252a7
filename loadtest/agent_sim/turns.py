"""Mutable per-turn state of an agent session (core, private to :mod:`.session`).

A :class:`TurnState` collects the timestamps of one turn while it happens and becomes an
immutable :class:`~loadtest.agent_sim.actions.TurnRecord` when it ends; a :class:`Playback`
is a reply scheduled or playing; a :class:`BargeCandidate` is caller speech over a reply that
has not yet lasted ``barge_min_speech_ms``.
"""

from __future__ import annotations

from collections.abc import Callable

from loadtest.agent_sim.actions import Action, SendAudio, SendText, TurnKind, TurnRecord
from loadtest.agent_sim.config import FRAME_MS, FaultKind, ReplyPolicy
from loadtest.agent_sim.stats import AgentStats

__all__ = ["FRAME_NS", "BargeCandidate", "Playback", "TurnState"]

FRAME_NS = FRAME_MS * 1_000_000


class TurnState:
    """A turn being built (mutable); becomes a :class:`TurnRecord` when finished."""

    __slots__ = (
        "barge_detected_ns",
        "barge_rx_ns",
        "due_ns",
        "fault",
        "fault_tx_ns",
        "first_index",
        "first_rx_ns",
        "first_tx_ns",
        "frames_planned",
        "frames_sent",
        "index",
        "kind",
        "last_index",
        "last_rx_ns",
        "last_tx_ns",
        "latency_ms",
        "stall_ms",
        "stop_tx_ns",
    )

    def __init__(self, kind: TurnKind, index: int | None) -> None:
        self.kind = kind
        self.index = index
        self.first_index: int | None = None
        self.first_rx_ns: int | None = None
        self.last_index: int | None = None
        self.last_rx_ns: int | None = None
        self.latency_ms: float | None = None
        self.stall_ms = 0
        self.fault: FaultKind | None = None
        self.fault_tx_ns: int | None = None
        self.due_ns: int | None = None
        self.first_tx_ns: int | None = None
        self.last_tx_ns: int | None = None
        self.frames_sent = 0
        self.frames_planned = 0
        self.barge_rx_ns: int | None = None
        self.barge_detected_ns: int | None = None
        self.stop_tx_ns: int | None = None

    def reopen(self) -> None:
        """The caller resumed before the reply began: forget the reply, keep the speech."""
        self.due_ns = self.latency_ms = self.fault = None
        self.last_index = self.last_rx_ns = None
        self.stall_ms = self.frames_planned = 0

    def to_record(
        self, outcome: str, connection_id: str, correlation_id: str | None, policy: ReplyPolicy
    ) -> TurnRecord:
        """The finished turn as a ground-truth record."""
        speech_frames = (
            self.last_index - self.first_index + 1
            if self.last_index is not None and self.first_index is not None
            else None
        )
        return TurnRecord(
            connection_id=connection_id,
            correlation_id=correlation_id,
            kind=self.kind,
            turn_index=self.index,
            outcome=outcome,
            first_speech_rx_ns=self.first_rx_ns,
            last_speech_rx_ns=self.last_rx_ns,
            speech_frames=speech_frames,
            latency_ms=self.latency_ms,
            stall_ms=self.stall_ms,
            endpoint_silence_ms=policy.endpoint_silence_ms,
            response_due_ns=self.due_ns,
            response_first_tx_ns=self.first_tx_ns,
            response_last_tx_ns=self.last_tx_ns,
            response_frames_sent=self.frames_sent,
            response_frames_planned=self.frames_planned,
            barge_speech_rx_ns=self.barge_rx_ns,
            barge_detected_ns=self.barge_detected_ns,
            stop_tx_ns=self.stop_tx_ns,
            barge_latency_ms=policy.barge_latency_ms,
            barge_mode=policy.barge_mode.value,
            fault=None if self.fault is None else self.fault.value,
            fault_tx_ns=self.fault_tx_ns,
        )


class Playback:
    """A scheduled or playing reply of ``frames`` 20 ms frames.

    Frame ``k`` is due at ``start_ns + (k // chunk_frames) × chunk_ns``: real time with
    chunks of one frame every 20 ms, bursts otherwise. ``end_ns`` is when the caller has heard
    all of it.
    """

    __slots__ = (
        "chunk_frames",
        "chunk_ns",
        "close_after",
        "end_ns",
        "garbage",
        "next",
        "start_ns",
        "stop_due_ns",
        "turn",
    )

    def __init__(
        self,
        turn: TurnState,
        start_ns: int,
        frames: int,
        chunk_frames: int = 1,
        chunk_ns: int = FRAME_NS,
    ) -> None:
        self.turn = turn
        self.start_ns = start_ns
        self.end_ns = start_ns + frames * FRAME_NS
        self.chunk_frames = chunk_frames
        self.chunk_ns = chunk_ns
        self.next = 0
        self.stop_due_ns: int | None = None
        self.garbage: Action | None = None  # sent at turn.due_ns, before the audio
        self.close_after: int | None = None  # fault: close once this many frames are out
        turn.frames_planned = frames

    def due(self, frame: int) -> int:
        return self.start_ns + (frame // self.chunk_frames) * self.chunk_ns

    def next_deadline_ns(self) -> int:
        """Next frame, pending StopAudio, or the end of playback, whichever comes first."""
        if self.next < self.turn.frames_planned:
            due = self.due(self.next)
            return due if self.stop_due_ns is None else min(due, self.stop_due_ns)
        return self.end_ns if self.stop_due_ns is None else self.stop_due_ns

    def send_due(
        self,
        now_ns: int,
        stats: AgentStats,
        transcript: Callable[[int, int], str | None] | None,
        actions: list[Action],
    ) -> bool:
        """Append the frames due by ``now_ns`` (none due at or after a pending stop) to
        ``actions``, recording them as sent at ``now_ns``; the reply's first frame is followed
        by ``transcript(now_ns, frames planned)`` when given. True when the close fault's frame
        count was reached."""
        turn = self.turn
        stop_due = self.stop_due_ns
        frame = self.next
        while frame < turn.frames_planned:
            due = self.start_ns + (frame // self.chunk_frames) * self.chunk_ns  # self.due(frame)
            if due > now_ns or (stop_due is not None and stop_due <= due):
                break
            actions.append(SendAudio(frame))
            stats.frames_sent_total += 1
            stats.record_lateness(now_ns - due)
            if turn.first_tx_ns is None:
                turn.first_tx_ns = now_ns
                stats.responses_total += 1
                text = None if transcript is None else transcript(now_ns, turn.frames_planned)
                if text is not None:
                    actions.append(SendText(text))
            turn.last_tx_ns = now_ns
            turn.frames_sent += 1
            frame += 1
            self.next = frame
            if self.close_after is not None and frame >= self.close_after:
                return True
        return False


class BargeCandidate:
    """Caller speech over a playing reply, not yet long enough to count as barge-in."""

    __slots__ = ("frames", "rx_ns", "start_index")

    def __init__(self, start_index: int, rx_ns: int, frames: int) -> None:
        self.start_index = start_index
        self.rx_ns = rx_ns
        self.frames = frames
