"""Measurement records the conversation engine produces (pure, frozen data).

Two kinds of record come out of :meth:`Conversation.events()
<loadtest.conversation.engine.Conversation.events>`, in the order they were decided:

* :class:`Sample` — one Locust request event: ``name`` (``connect``, ``greeting``, ``ttfb``,
  ``barge_in``, ``turn``), a response time in milliseconds and, for a failure, a stable error
  name (:class:`Failure`). The edge forwards these unchanged to ``events.request``.
* :class:`GreetingReport` and :class:`TurnReport` — everything known about the greeting or
  a finished turn (talk-over, the answer's audio and inter-arrival gaps, the barge-in with
  the audible talk-over), for histograms beyond Locust's.

Instants are monotonic nanoseconds as given by the edge; durations are milliseconds (float).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "AnswerStats",
    "BargeOutcome",
    "BargeReport",
    "Counters",
    "Event",
    "Failure",
    "GreetingReport",
    "Metric",
    "Sample",
    "TalkOver",
    "TurnReport",
]


class Metric(enum.Enum):
    """Locust request names (``request_type`` is ``voice``)."""

    CONNECT = "connect"  # WebSocket upgrade time
    GREETING = "greeting"  # first greeting audio − start
    TTFB = "ttfb"  # first agent audio after EOS − EOS
    BARGE_IN = "barge_in"  # stop signal / last audio before a quiet gap − first barge frame
    TURN = "turn"  # first frame sent → the caller finished hearing the answer


class Failure(enum.Enum):
    """Stable error names of failed samples."""

    TTFB_TIMEOUT = "ttfb_timeout"  # no agent audio within first_byte_timeout_ms of EOS
    BARGE_IGNORED = "barge_ignored"  # agent audio kept coming (or playing) through the window
    CLOSED_MID_TURN = "closed_mid_turn"  # the connection dropped before the turn completed
    PROTOCOL_ERROR = "protocol_error"  # the agent broke RFC 6455; the caller failed the connection
    CONNECT_REFUSED = "connect_refused"  # edge: TCP refused / unreachable
    CONNECT_TIMEOUT = "connect_timeout"  # edge: no upgrade in time
    CONNECT_ERROR = "connect_error"  # edge: TLS, HTTP status or handshake error


@dataclass(frozen=True, slots=True)
class Sample:
    """One Locust request event.

    Attributes:
        metric: which measurement; ``metric.value`` is the Locust request name.
        value_ms: the response time. For a failure, the time until it was decided (e.g. the
            timeout).
        at_ns: the instant the sample was decided.
        scenario: scenario name (for optional per-scenario names such as
            ``ttfb/insurance_inquiry/3``).
        turn_index: the turn, or ``None`` for call-level samples (connect, greeting).
        failure: ``None`` on success, else the error name.
        detail: one line of context for a failure (close code, reason).
    """

    metric: Metric
    value_ms: float
    at_ns: int
    scenario: str
    turn_index: int | None = None
    failure: Failure | None = None
    detail: str = ""

    @property
    def name(self) -> str:
        """The Locust request name."""
        return self.metric.value

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True, slots=True)
class AnswerStats:
    """Agent audio of one answer (or the greeting) as it arrived.

    ``gaps_ms`` are the inter-arrival gaps between consecutive frames: a real-time agent
    shows ~frame-length gaps, a bursting one ~0 then a long silence, a struggling one spikes.
    """

    first_arrival_ns: int
    last_arrival_ns: int
    frames: int
    audio_ms: float
    gaps_ms: tuple[float, ...]

    @property
    def max_gap_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    @property
    def arrival_span_ms(self) -> float:
        """From the first to the last frame's arrival."""
        return (self.last_arrival_ns - self.first_arrival_ns) / 1e6


@dataclass(frozen=True, slots=True)
class TalkOver:
    """Agent audio that arrived while the caller was speaking (first speech frame .. EOS)."""

    frames: int = 0
    audio_ms: float = 0.0
    first_arrival_ns: int | None = None


class BargeOutcome(enum.Enum):
    """How a barge-in ended."""

    STOPPED = "stopped"  # the agent's stop signal arrived within the window
    QUIET = "quiet"  # the agent's audio stopped (a barge_quiet_ms gap) within the window
    IGNORED = "ignored"  # audio still arriving, or still playing, after the window
    PLAYED_OUT = "played_out"  # no audio after the barge and no stop: what was sent played out
    CLOSED = "closed"  # the connection dropped first


@dataclass(frozen=True, slots=True)
class BargeReport:
    """A barge-in: the caller started a turn while the agent's audio was playing.

    Attributes:
        outcome: how it ended.
        interrupted_turn: index of the turn whose answer was interrupted; ``None`` for the
            greeting.
        started_ns: due instant of the barging turn's first frame.
        speech_ns: send instant of its first speech frame (the barge-in reference), if sent.
        decided_ns: when the outcome was decided.
        latency_ms: barge-in latency for STOPPED (stop arrival − ``speech_ns``) and QUIET
            (last agent audio arrival before the quiet gap − ``speech_ns``; the gap itself is
            not counted); ``None`` otherwise.
        audible_talk_over_ms: how long after ``speech_ns`` the caller still heard the agent
            (the playback buffer's end, cut by a stop signal's flush), >= 0.
        stop_arrival_ns: arrival of the stop signal, if one ended it.
        last_audio_ns: arrival of the interrupted audio's last frame seen.
    """

    outcome: BargeOutcome
    interrupted_turn: int | None
    started_ns: int
    speech_ns: int | None
    decided_ns: int
    latency_ms: float | None
    audible_talk_over_ms: float | None
    stop_arrival_ns: int | None
    last_audio_ns: int | None

    @property
    def ok(self) -> bool:
        """Whether the barge-in was honoured (or had nothing left to stop)."""
        return self.outcome in (BargeOutcome.STOPPED, BargeOutcome.QUIET, BargeOutcome.PLAYED_OUT)


@dataclass(frozen=True, slots=True)
class GreetingReport:
    """The agent's greeting (an agent that speaks first when the call connects).

    ``latency_ms`` is the first greeting audio's arrival − :meth:`Conversation.start`'s
    instant, ``None`` when no greeting came within the greeting timeout (``answer`` is then
    ``None`` too). ``barged``: turn 0 interrupted it; ``truncated``: it outlasted
    ``max_tail_ms`` and turn 0 started anyway.
    """

    latency_ms: float | None
    answer: AnswerStats | None
    barged: bool
    truncated: bool
    ended_ns: int


@dataclass(frozen=True, slots=True)
class TurnReport:
    """Everything measured about one finished turn (emitted right after its ``turn`` Sample).

    Attributes:
        index, scenario, audio_key: which turn and utterance.
        barge_scheduled: the plan wanted this turn to barge in (``barge`` is ``None`` when it
            could not: no answer to interrupt, or the answer ended first).
        started_ns: send instant of the turn's first frame.
        speech_ns: send instant of its first speech frame; ``eos_ns``: of its last (EOS).
        ended_ns: when the caller finished hearing the answer (playback end), or the
            failure/cut instant; ``duration_ms`` = ``ended_ns − started_ns``.
        ttfb_ms: ``None`` when the agent did not answer in time or the answer could not be
            told apart from an ignored barge-in's audio.
        failure: ``None`` on success.
        talk_over: agent audio that arrived between ``speech_ns`` and ``eos_ns``.
        answer: the answer's audio, if it started.
        barge: the barge-in this turn made.
        truncated: the answer outlasted ``max_tail_ms`` and the next turn started anyway.
        close_code, close_reason: set when the connection dropped during this turn.
        cut: the run's end stopped the caller during this turn (no ``turn`` Sample: neither
            a success nor a failure); what was measured before is reported.
        speech_media_ms, eos_media_ms: the media time of the first speech frame and of the
            EOS frame since the call's stream began (frame slot × frame length): what the
            frames themselves carry where the protocol stamps media time (Twilio's
            ``media.timestamp``), for finding them in an agent's log.
    """

    index: int
    scenario: str
    audio_key: str
    barge_scheduled: bool
    started_ns: int
    speech_ns: int | None
    eos_ns: int | None
    ended_ns: int
    ttfb_ms: float | None
    failure: Failure | None
    talk_over: TalkOver
    answer: AnswerStats | None
    barge: BargeReport | None
    truncated: bool = False
    close_code: int | None = None
    close_reason: str = ""
    cut: bool = False
    speech_media_ms: int | None = None
    eos_media_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def duration_ms(self) -> float:
        return (self.ended_ns - self.started_ns) / 1e6


@dataclass(frozen=True, slots=True)
class Counters:
    """Inbound messages by kind, and what is counted rather than timed."""

    inbound_audio: int = 0
    inbound_stop: int = 0
    inbound_transcript: int = 0
    inbound_end: int = 0
    inbound_other: int = 0
    inbound_malformed: int = 0
    empty_audio: int = 0  # AUDIO carrying 0 bytes: ignored
    stray_audio_frames: int = 0  # agent audio outside the greeting, answers and talk-over
    stray_stops: int = 0  # stop signals outside a barge-in while the agent talked
    stop_while_silent: int = 0  # stop signals while the agent was quiet: never a barge-in
    barge_skipped: int = 0  # scheduled barge-ins with nothing left to interrupt
    greeting_absent: int = 0  # no greeting within the greeting timeout


Event = Sample | GreetingReport | TurnReport
"""What :meth:`Conversation.events` returns."""
