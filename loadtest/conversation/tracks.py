"""Mutable accumulators behind the engine's measurements (internal to the core).

They hold running state for one answer, one turn's talk-over and one barge-in, and turn it
into the frozen records of :mod:`loadtest.conversation.measure`. Times are monotonic ns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from loadtest.conversation.measure import (
    AnswerStats,
    BargeOutcome,
    BargeReport,
    Failure,
    TalkOver,
)
from loadtest.conversation.plan import PlannedTurn

__all__ = ["AudioTrack", "BargeTracker", "TalkOverTrack", "TurnState"]

_NS_PER_MS = 1_000_000


class AudioTrack:
    """Arrivals of one stream of agent audio (an answer or the greeting)."""

    __slots__ = ("_gaps_ns", "audio_ns", "first_ns", "frames", "last_ns")

    def __init__(self, arrival_ns: int, duration_ns: int) -> None:
        self.first_ns = arrival_ns
        self.last_ns = arrival_ns
        self.frames = 1
        self.audio_ns = duration_ns
        self._gaps_ns: list[int] = []

    def add(self, arrival_ns: int, duration_ns: int) -> None:
        self._gaps_ns.append(max(0, arrival_ns - self.last_ns))
        self.last_ns = max(self.last_ns, arrival_ns)
        self.frames += 1
        self.audio_ns += duration_ns

    def stats(self) -> AnswerStats:
        return AnswerStats(
            first_arrival_ns=self.first_ns,
            last_arrival_ns=self.last_ns,
            frames=self.frames,
            audio_ms=self.audio_ns / _NS_PER_MS,
            gaps_ms=tuple(gap / _NS_PER_MS for gap in self._gaps_ns),
        )


class TalkOverTrack:
    """Agent audio that arrived while the caller was speaking."""

    __slots__ = ("audio_ns", "first_ns", "frames")

    def __init__(self) -> None:
        self.frames = 0
        self.audio_ns = 0
        self.first_ns: int | None = None

    def add(self, arrival_ns: int, duration_ns: int) -> None:
        if self.first_ns is None:
            self.first_ns = arrival_ns
        self.frames += 1
        self.audio_ns += duration_ns

    def snapshot(self) -> TalkOver:
        return TalkOver(
            frames=self.frames, audio_ms=self.audio_ns / _NS_PER_MS, first_arrival_ns=self.first_ns
        )


class BargeTracker:
    """One barge-in, from the barging turn's start until its outcome is known.

    Two things are tracked separately:

    * **ownership** — agent audio belongs to the interrupted answer (not to the barging
      turn's own answer) until a ``quiet_ns`` gap follows its last frame or the agent's stop
      signal arrives; :attr:`owns` is ``False`` afterwards. Audio after either starts a new
      answer: over the caller's speech it is the barging turn's own talk-over, after its end
      of speech its answer — never more of the interrupted answer's audible talk-over (an
      agent's next reply often follows its stop within ``quiet_ns``).
    * **outcome** — with ``B`` the send instant of the first barge speech frame and ``W`` the
      window: a stop signal at or after ``B`` → STOPPED (latency = stop − B); audio arriving
      after ``B + W`` → IGNORED; audio after ``B`` then a quiet gap → QUIET (latency = last
      frame's arrival − B, the gap not counted). When nothing arrived after ``B``: still
      audible at ``B + W`` → IGNORED, else PLAYED_OUT once the caller heard it all.

    The tracker keeps its own playback end of the interrupted audio (what the caller will
    have heard of it, cut by a stop signal), so audio that comes later — the barging turn's
    own answer — never counts as audible talk-over. Call :meth:`on_time` with the current
    instant before feeding each later inbound message (the engine does), so a quiet gap that
    ended before a message is seen as such.
    """

    __slots__ = (
        "_last_ns",
        "_play_end_ns",
        "_quiet_ns",
        "_speech_ns",
        "_stop_ns",
        "_window_ns",
        "interrupted_turn",
        "owns",
        "report",
        "started_ns",
    )

    def __init__(
        self,
        *,
        interrupted_turn: int | None,
        started_ns: int,
        last_audio_ns: int | None,
        playback_end_ns: int,
        window_ns: int,
        quiet_ns: int,
    ) -> None:
        """Start at ``started_ns`` with the interrupted audio's state at that instant.

        ``last_audio_ns``: its latest frame's arrival; ``playback_end_ns``: when the caller
        will have heard it all; ``window_ns``: the barge-in window; ``quiet_ns``: the gap
        that ends agent audio.
        """
        self.interrupted_turn = interrupted_turn
        self.started_ns = started_ns
        self._last_ns = last_audio_ns
        self._play_end_ns = playback_end_ns
        self._window_ns = window_ns
        self._quiet_ns = quiet_ns
        self._speech_ns: int | None = None
        self._stop_ns: int | None = None
        self.owns = last_audio_ns is not None
        self.report: BargeReport | None = None

    @property
    def speech_ns(self) -> int | None:
        return self._speech_ns

    def speech_sent(self, sent_ns: int) -> None:
        """The first barge speech frame left at ``sent_ns`` (the reference instant B)."""
        self._speech_ns = sent_ns

    def on_audio(self, arrival_ns: int, playback_end_ns: int) -> BargeReport | None:
        """A frame of the interrupted audio (only while :attr:`owns`).

        ``playback_end_ns`` is the playback buffer's end with this frame added.
        """
        self._last_ns = arrival_ns if self._last_ns is None else max(self._last_ns, arrival_ns)
        self._play_end_ns = max(self._play_end_ns, playback_end_ns)
        speech = self._speech_ns
        if self.report is None and speech is not None and arrival_ns > speech + self._window_ns:
            return self._decide(BargeOutcome.IGNORED, arrival_ns, None)
        return None

    def on_stop(self, arrival_ns: int) -> BargeReport | None:
        """The agent's stop signal arrived: what was not yet heard is flushed, and the
        interrupted answer is over (ownership ends)."""
        self._play_end_ns = min(self._play_end_ns, arrival_ns)
        self.owns = False
        speech = self._speech_ns
        if self.report is None and speech is not None and arrival_ns >= speech:
            self._stop_ns = arrival_ns
            return self._decide(BargeOutcome.STOPPED, arrival_ns, arrival_ns - speech)
        return None

    def on_time(self, now_ns: int) -> BargeReport | None:
        """Time has reached ``now_ns``: end ownership after a quiet gap; decide if due."""
        last = self._last_ns
        speech = self._speech_ns
        if self.owns and (last is None or now_ns >= last + self._quiet_ns):
            self.owns = False
            report = self.report
            if report is not None and speech is not None:
                # audio that kept coming after the decision (an ignored barge-in) was heard
                # too: the audible talk-over is final only now
                heard_ms = max(0, self._play_end_ns - speech) / _NS_PER_MS
                if report.audible_talk_over_ms is None or heard_ms > report.audible_talk_over_ms:
                    self.report = replace(report, audible_talk_over_ms=heard_ms)
        if self.report is not None or speech is None:
            return None
        if last is not None and last >= speech:
            if self.owns:
                return None
            return self._decide(BargeOutcome.QUIET, last + self._quiet_ns, last - speech)
        window_end = speech + self._window_ns
        if now_ns >= window_end and self._play_end_ns > window_end:
            return self._decide(BargeOutcome.IGNORED, window_end, None)
        if not self.owns and now_ns >= self._play_end_ns:
            return self._decide(BargeOutcome.PLAYED_OUT, max(speech, self._play_end_ns), None)
        return None

    def finish(self, now_ns: int, *, closed: bool) -> BargeReport:
        """The barging turn ends (or the call dropped) before an outcome: decide now."""
        if self.report is not None:
            return self.report
        if closed:  # the caller hears nothing after the call dropped
            self._play_end_ns = min(self._play_end_ns, now_ns)
            return self._decide(BargeOutcome.CLOSED, now_ns, None)
        return self._decide(BargeOutcome.IGNORED, now_ns, None)

    def _decide(
        self, outcome: BargeOutcome, decided_ns: int, latency_ns: int | None
    ) -> BargeReport:
        speech = self._speech_ns
        self.report = BargeReport(
            outcome=outcome,
            interrupted_turn=self.interrupted_turn,
            started_ns=self.started_ns,
            speech_ns=speech,
            decided_ns=decided_ns,
            latency_ms=None if latency_ns is None else latency_ns / _NS_PER_MS,
            audible_talk_over_ms=(
                None if speech is None else max(0, self._play_end_ns - speech) / _NS_PER_MS
            ),
            stop_arrival_ns=self._stop_ns,
            last_audio_ns=self._last_ns,
        )
        return self.report


@dataclass(slots=True)
class TurnState:
    """The running state of the current turn."""

    plan: PlannedTurn
    t0_ns: int  # due instant of frame 0
    started_ns: int | None = None  # send instant of frame 0
    speech_ns: int | None = None  # send instant of the first speech frame
    eos_ns: int | None = None  # send instant of the EOS frame
    speech_media_ms: int | None = None  # media time of the first speech frame (slot × chunk)
    eos_media_ms: int | None = None  # media time of the EOS frame
    next_frame: int = 0  # next recording frame to hand out
    answer: AudioTrack | None = None
    ttfb_ms: float | None = None
    failure: Failure | None = None  # the first failure wins
    timed_out: bool = False  # no answer within first_byte_timeout_ms of EOS
    ambiguous: bool = False  # the interrupted audio never stopped: no answer to time
    talk_over: TalkOverTrack = field(default_factory=TalkOverTrack)
    barge: BargeTracker | None = None

    def in_talk_over(self, arrival_ns: int) -> bool:
        """Whether audio arriving at ``arrival_ns`` overlaps the caller's speech."""
        speech, eos = self.speech_ns, self.eos_ns
        return speech is not None and arrival_ns >= speech and (eos is None or arrival_ns <= eos)
