"""Settings of one simulated caller's conversation: frozen, validated once, passed in.

The settings module maps the seed-compatible environment variables and CLI flags onto these
fields (``CHUNK_MS`` → ``chunk_ms``, ``FIRST_BYTE_TIMEOUT_SEC`` × 1000 →
``first_byte_timeout_ms``, ``BARGE_QUIET_MS`` → ``barge_quiet_ms``, ``BARGE_IN_RATE`` →
``barge_in_rate``, ``BARGE_AFTER_MS`` → ``barge_after_ms``, ``CHUNKS_PER_TURN`` →
``chunks_per_turn``, ``TURNS_PER_USER`` → ``turns_per_user``). A bad value raises
:class:`~loadtest.errors.ConfigError` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from loadtest.audio.pcm import SUPPORTED_RATES
from loadtest.errors import ConfigError

__all__ = ["ConversationConfig", "GreetingMode"]


class GreetingMode(enum.Enum):
    """What the caller does about an agent that speaks first when the call connects."""

    WAIT = "wait"  # stream comfort noise, let the greeting finish, then speak turn 0
    BARGE = "barge"  # interrupt the greeting barge_after_ms after it began (a barge-in)
    OFF = "off"  # speak turn 0 at once; greeting audio is talk-over, never measured


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    """How one caller converses. All times are whole milliseconds.

    Attributes:
        chunk_ms: length of one caller frame; frame k of a turn is due at
            ``t0 + k × chunk_ms``.
        first_byte_timeout_ms: the agent must start answering (first audio after the
            end of speech) within this; also the barge-in window: agent audio still arriving
            (or still audible) this long after the first barge speech frame is an ignored
            barge-in. Seed default 5 s.
        barge_quiet_ms: a gap this long with no agent audio means the agent's audio ended
            (the gap itself is never part of a latency). Seed default 400 ms: longer than
            the pauses between TTS chunks of a streaming agent, short enough to keep turns
            snappy. Must exceed one frame.
        barge_in_rate: share of turns (after the first) whose utterance starts while the
            previous answer is still playing, 0..1.
        barge_after_ms: a barge-in turn starts this long after the interrupted answer's
            first audio arrived (seed ``BARGE_REENTRY_MS`` default 1 s).
        chunks_per_turn: cap on the speech frames sent per turn, counted from the first
            speech frame (leading silence does not use it up); 0 = the whole utterance.
        turns_per_user: turns per conversation; 0 = the scenario's turns once; more than the
            scenario has repeats its turns in order.
        greeting: what to do about an agent that speaks first (see :class:`GreetingMode`).
        greeting_timeout_ms: how long to wait for a greeting before speaking turn 0 anyway;
            ``None`` = ``first_byte_timeout_ms``.
        max_tail_ms: the longest a caller keeps listening after its end of speech (or after
            the greeting began) before the next turn starts regardless — a cap for agents
            whose audio never stops. At least ``first_byte_timeout_ms`` (seed
            ``TURN_TIMEOUT_SEC``).
        pause_between_turns_ms: after the agent's answer is over (or timed out), the caller
            waits this long before its next turn — a person thinking before they speak (seed
            ``PAUSE_BETWEEN_TURNS_SEC``). A barge-in turn does not wait.
        agent_sample_rate: sample rate of the agent's PCM16 audio, to turn
            :attr:`Inbound.audio_bytes <loadtest.protocols.base.Inbound.audio_bytes>` into
            playback time.
    """

    chunk_ms: int = 20
    first_byte_timeout_ms: int = 5_000
    barge_quiet_ms: int = 400
    barge_in_rate: float = 0.25
    barge_after_ms: int = 1_000
    chunks_per_turn: int = 0
    turns_per_user: int = 0
    greeting: GreetingMode = GreetingMode.WAIT
    greeting_timeout_ms: int | None = None
    max_tail_ms: int = 30_000
    pause_between_turns_ms: int = 0
    agent_sample_rate: int = 16_000

    def __post_init__(self) -> None:
        _check(1 <= self.chunk_ms <= 1000, "chunk_ms", self.chunk_ms, "1..1000")
        _check(
            self.first_byte_timeout_ms > 0,
            "first_byte_timeout_ms",
            self.first_byte_timeout_ms,
            "a positive number of milliseconds",
        )
        _check(
            self.barge_quiet_ms > self.chunk_ms,
            "barge_quiet_ms",
            self.barge_quiet_ms,
            f"more than one frame (chunk_ms={self.chunk_ms})",
        )
        _check(
            math.isfinite(self.barge_in_rate) and 0.0 <= self.barge_in_rate <= 1.0,
            "barge_in_rate",
            self.barge_in_rate,
            "a share between 0 and 1",
        )
        _check(self.barge_after_ms >= 0, "barge_after_ms", self.barge_after_ms, ">= 0")
        _check(self.chunks_per_turn >= 0, "chunks_per_turn", self.chunks_per_turn, ">= 0")
        _check(self.turns_per_user >= 0, "turns_per_user", self.turns_per_user, ">= 0")
        _check(
            isinstance(self.greeting, GreetingMode),
            "greeting",
            self.greeting,
            ", ".join(mode.value for mode in GreetingMode),
        )
        _check(
            self.greeting_timeout_ms is None or self.greeting_timeout_ms > 0,
            "greeting_timeout_ms",
            self.greeting_timeout_ms,
            "a positive number of milliseconds",
        )
        _check(
            self.max_tail_ms >= self.first_byte_timeout_ms,
            "max_tail_ms",
            self.max_tail_ms,
            f"at least first_byte_timeout_ms={self.first_byte_timeout_ms}",
        )
        _check(
            self.pause_between_turns_ms >= 0,
            "pause_between_turns_ms",
            self.pause_between_turns_ms,
            ">= 0",
        )
        _check(
            self.agent_sample_rate in SUPPORTED_RATES,
            "agent_sample_rate",
            self.agent_sample_rate,
            ", ".join(str(rate) for rate in SUPPORTED_RATES),
        )

    @property
    def greeting_wait_ms(self) -> int:
        """The effective greeting timeout in milliseconds."""
        if self.greeting_timeout_ms is None:
            return self.first_byte_timeout_ms
        return self.greeting_timeout_ms


def _check(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"conversation setting {name}={value!r} is not allowed ({allowed})")
