"""Types shared by every wire protocol module (sans-I/O).

A protocol module turns caller PCM frames into wire messages and wire messages into the small
vocabulary below, for both sides: the caller (the load generator) and the agent (the
simulator). The conversation engine only ever sees :class:`Inbound` values, so it does not
know which protocol is on the wire.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "CallerAudio",
    "CallerDtmf",
    "CallerMessage",
    "CallerMetadata",
    "CallerOther",
    "Inbound",
    "InboundKind",
    "WireMessage",
]

WireMessage = str | bytes
"""A WebSocket message: ``str`` for a text frame, ``bytes`` for a binary frame."""


class InboundKind(enum.Enum):
    """What a message from the agent means to a caller."""

    AUDIO = "audio"  # agent speech
    STOP = "stop"  # the agent's stop/flush signal (ACS StopAudio, Twilio clear)
    TRANSCRIPT = "transcript"  # text the agent says or recognised (matched RESPONSE_TOKENS)
    END = "end"  # the agent ends the call/turn (matched END_TOKENS)
    OTHER = "other"  # well-formed but irrelevant to the measurements
    MALFORMED = "malformed"  # not valid for the protocol (counted, never fatal)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A classified message from the agent.

    Attributes:
        kind: what the message means.
        audio_bytes: PCM16 bytes of agent audio carried (AUDIO only), computed from the
            payload length without decoding it.
        detail: short text for MALFORMED (the reason) or TRANSCRIPT/END (the matched text).
        mark: the name of a playback mark the agent placed in its audio stream (Twilio
            ``mark``), which the caller echoes once it has heard the audio before it;
            ``""`` for every other message.
    """

    kind: InboundKind
    audio_bytes: int = 0
    detail: str = ""
    mark: str = ""


@dataclass(frozen=True, slots=True)
class CallerMetadata:
    """The caller's stream description (ACS ``AudioMetadata``)."""

    sample_rate: int
    channels: int = 1
    frame_ms: int = 20
    encoding: str = "PCM"


@dataclass(slots=True)
class CallerAudio:
    """One frame of caller audio as the agent receives it (PCM16 bytes, decoded).

    Not frozen, unlike its siblings: the simulator builds one per inbound frame and a frozen
    dataclass's ``__init__`` costs three times as much. Treat it as read-only.
    """

    pcm: bytes
    silent: bool = False
    timestamp: str | None = None
    participant: str | None = None


@dataclass(frozen=True, slots=True)
class CallerDtmf:
    """A DTMF tone from the caller."""

    tone: str


@dataclass(frozen=True, slots=True)
class CallerOther:
    """A well-formed caller message of a kind the agent ignores (``kind`` as received)."""

    kind: str


CallerMessage = CallerMetadata | CallerAudio | CallerDtmf | CallerOther
"""What an agent-side parser returns for one caller message."""
