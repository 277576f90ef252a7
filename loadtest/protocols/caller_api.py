"""The caller side of a wire protocol, as the load generator uses it (core: pure).

A :class:`CallerProtocol` pre-encodes a whole utterance once (per process) into
:class:`CallerFrame` values; per send, the edge only calls ``render`` with the frame's
sequence number, its media time, its due instant (some protocols stamp each message) and the
call's stream id (some name the stream in every message).
It also says what to send when the call opens and closes, and classifies what the agent sends.
Pick one with :func:`loadtest.protocols.caller_protocol` (``WS_PROTOCOL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from loadtest.protocols.base import Inbound, WireMessage

__all__ = ["CallContext", "CallerFrame", "CallerProtocol"]


class CallerFrame(Protocol):
    """One pre-encoded caller frame."""

    def render(self, seq: int, media_ms: int, epoch_ns: int, stream: str) -> WireMessage:
        """The message for this frame. ``seq`` counts media frames from 1 in the call,
        ``media_ms`` is the frame's media time since the stream began, ``epoch_ns`` its due
        instant on the wall clock (Unix ns), ``stream`` the call's
        :meth:`CallerProtocol.stream_id`."""
        ...


class CallContext(Protocol):
    """What a protocol may need to open or close one call."""

    call_id: str
    sample_rate: int
    frame_ms: int


class CallerProtocol(Protocol):
    """One wire protocol, caller side."""

    name: str

    def agent_sample_rate(self, cache_rate: int) -> int:
        """Sample rate of the agent's audio as PCM16 (for playback time from byte counts)."""
        ...

    def encode_clip(self, pcm: bytes, sample_rate: int, frame_ms: int) -> Sequence[CallerFrame]:
        """Pre-encode a PCM16 utterance into frames of ``frame_ms`` (last one padded)."""
        ...

    def encode_silence(
        self, frames: Sequence[bytes], sample_rate: int, *, flagged: bool
    ) -> Sequence[CallerFrame]:
        """Pre-encode PCM16 silence/comfort-noise frames (``flagged``: mark them silent where
        the protocol can)."""
        ...

    def stream_id(self, call: CallContext) -> str:
        """The id this call's messages name their stream by (Twilio ``streamSid``; ``""``
        where the protocol has none); fixed for the call, passed to every ``render``."""
        ...

    def open_messages(self, call: CallContext) -> list[WireMessage]:
        """Sent right after the upgrade, before any audio."""
        ...

    def close_messages(self, call: CallContext, frames_sent: int) -> list[WireMessage]:
        """Sent when the caller hangs up normally."""
        ...

    def classify(
        self, message: WireMessage, response_tokens: tuple[str, ...], end_tokens: tuple[str, ...]
    ) -> Inbound:
        """What an agent message means (cheap: runs for every inbound message)."""
        ...
