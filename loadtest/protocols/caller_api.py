"""The caller side of a wire protocol, as the load generator uses it (core: pure).

A :class:`CallerProtocol` pre-encodes a whole utterance once (per process) into
:class:`CallerFrame` values; per send, the edge only calls ``render`` with the frame's
sequence number, its media time, its due instant (some protocols stamp each message) and the
call's :class:`CallStream` (some name the stream in every message and number every message).
It also says what to send when the call opens and closes, classifies what the agent sends,
and — where the protocol has them (:attr:`CallerProtocol.echoes_marks`) — how to echo the
agent's playback marks (:class:`~loadtest.conversation.marks.MarkEchoes` says when).
Pick one with :func:`loadtest.protocols.caller_protocol` (``WS_PROTOCOL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from loadtest.protocols.base import Inbound, WireMessage

__all__ = ["CallContext", "CallStream", "CallerFrame", "CallerProtocol"]


class CallStream:
    """One call's stream as its messages name and number it (mutable, owned by the edge).

    ``id`` is :meth:`CallerProtocol.stream_id`; ``echoes`` counts the messages sent besides
    the opening messages and media frames (mark echoes), which protocols that number every
    message (Twilio ``sequenceNumber``) count too.
    """

    __slots__ = ("echoes", "id")

    def __init__(self, stream_id: str) -> None:
        self.id = stream_id
        self.echoes = 0


class CallerFrame(Protocol):
    """One pre-encoded caller frame."""

    def render(self, seq: int, media_ms: int, epoch_ns: int, stream: CallStream) -> WireMessage:
        """The message for this frame. ``seq`` counts media frames from 1 in the call,
        ``media_ms`` is the frame's media time since the stream began, ``epoch_ns`` its due
        instant on the wall clock (Unix ns), ``stream`` the call's stream."""
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

    echoes_marks: bool
    """Whether the caller echoes the agent's playback marks (Twilio ``mark``)."""

    def stream_id(self, call: CallContext) -> str:
        """The id this call's messages name their stream by (Twilio ``streamSid``; ``""``
        where the protocol has none): the edge makes the call's :class:`CallStream` of it,
        and every message of the call takes the id from there."""
        ...

    def log_ids(self, call: CallContext, stream: CallStream) -> dict[str, str]:
        """The ids the agent knows this call by beyond its connection headers (Twilio
        ``stream_sid`` and ``call_sid``), for the per-turn log."""
        ...

    def mark_echo(self, name: str, media_sent: int, stream: CallStream) -> WireMessage:
        """The echo of the agent's mark ``name``, sent after ``media_sent`` media frames
        (only called when :attr:`echoes_marks`); the edge counts it in ``stream.echoes``
        once sent."""
        ...

    def open_messages(self, call: CallContext, stream: CallStream) -> list[WireMessage]:
        """Sent right after the upgrade, before any audio."""
        ...

    def close_messages(
        self, call: CallContext, frames_sent: int, stream: CallStream
    ) -> list[WireMessage]:
        """Sent when the caller hangs up normally, after ``frames_sent`` media frames."""
        ...

    def classify(
        self, message: WireMessage, response_tokens: tuple[str, ...], end_tokens: tuple[str, ...]
    ) -> Inbound:
        """What an agent message means (cheap: runs for every inbound message)."""
        ...
