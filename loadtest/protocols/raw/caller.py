"""Raw binary PCM, caller side (sans-I/O): binary PCM16 frames out, binary agent audio in.

There is no handshake and no framing beyond the WebSocket's: each caller frame is one binary
message of PCM16 little-endian mono at the configured rate (:class:`RawCaller` resamples the
cache once, at load time, when the rates differ). The agent answers with binary PCM16 at the
same rate; text frames are control messages: the configured stop message
(:class:`StopMatcher`, default ``{"type":"interrupt"}``) ends agent audio, others are matched
against ``RESPONSE_TOKENS``/``END_TOKENS``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.audio.pcm import SUPPORTED_RATES, frame_size, resample
from loadtest.errors import ConfigError
from loadtest.protocols._match import match_tokens
from loadtest.protocols.base import Inbound, InboundKind, WireMessage
from loadtest.protocols.caller_api import CallContext, CallStream

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_STOP_MESSAGE",
    "RawCaller",
    "RawFrame",
    "StopMatcher",
    "classify",
    "to_rate_frames",
]

DEFAULT_SAMPLE_RATE = 16000
DEFAULT_STOP_MESSAGE = '{"type":"interrupt"}'
_PAYLOAD_KEYS = frozenset({"audio", "payload"})  # base64 audio some agents put in JSON


@dataclass(frozen=True, slots=True)
class StopMatcher:
    """Recognises the agent's stop message (raw has no standard one; ``RAW_STOP_MESSAGE``).

    A JSON-object stop message matches any JSON object that has each of its keys with an
    equal value (keys and string values compared case-insensitively, other keys ignored):
    ``{"type":"interrupt"}`` matches ``{"type": "Interrupt", "id": 7}``. Any other stop text
    matches a text frame equal to it, ignoring case and surrounding white space.
    """

    text: str
    fields: tuple[tuple[str, object], ...] = ()

    @classmethod
    def parse(cls, message: str) -> StopMatcher:
        """Build from the configured message; raises :class:`ConfigError` when it is empty."""
        text = message.strip()
        if not text:
            raise ConfigError("RAW_STOP_MESSAGE is empty: the agent's stop signal must be set")
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj:
            return cls(text.lower(), tuple((k.lower(), _folded(v)) for k, v in obj.items()))
        return cls(text.lower())

    def matches(self, text: str, obj: object) -> bool:
        """Whether a text frame (``obj``: its parsed JSON, or ``None``) is the stop message."""
        if self.fields and isinstance(obj, dict):
            folded = {k.lower(): v for k, v in obj.items() if isinstance(k, str)}
            return all(
                key in folded and _folded(folded[key]) == value for key, value in self.fields
            )
        return text.strip().lower() == self.text


def _folded(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


_STOP = Inbound(InboundKind.STOP)
_OTHER = Inbound(InboundKind.OTHER)
_audio_cache: dict[int, Inbound] = {}


def classify(
    message: WireMessage,
    stop: StopMatcher,
    response_tokens: tuple[str, ...] = (),
    end_tokens: tuple[str, ...] = (),
) -> Inbound:
    """Classify one message from the agent, cheaply (it runs for every inbound frame).

    * A binary frame of whole PCM16 samples → AUDIO (``audio_bytes`` = its length); an empty
      or odd-length one → MALFORMED.
    * A text frame that is the ``stop`` message → STOP.
    * Other text: END if its text (JSON: any string value except ``audio``/``payload``
      fields) contains one of ``end_tokens``, else TRANSCRIPT for ``response_tokens``, else
      OTHER. Text that starts like JSON (``{``/``[``) but does not parse → MALFORMED.
    """
    if isinstance(message, bytes | bytearray | memoryview):
        size = len(message)
        if size == 0 or size % 2:
            return Inbound(InboundKind.MALFORMED, detail=f"binary frame of {size} bytes")
        inbound = _audio_cache.get(size)
        if inbound is None:
            inbound = Inbound(InboundKind.AUDIO, audio_bytes=size)
            if len(_audio_cache) < 64:
                _audio_cache[size] = inbound
        return inbound
    stripped = message.strip()
    obj: object = None
    if stripped[:1] in ("{", "["):
        try:
            obj = json.loads(stripped)
        except (ValueError, RecursionError):
            return Inbound(InboundKind.MALFORMED, detail="invalid JSON")
    if stop.matches(stripped, obj):
        return _STOP
    matched = match_tokens(
        stripped if obj is None else obj, response_tokens, end_tokens, _PAYLOAD_KEYS
    )
    if matched is not None:
        return matched
    return _OTHER


def to_rate_frames(
    pcm: bytes, from_rate: int, to_rate: int, frame_ms: int, count: int
) -> list[bytes]:
    """PCM16 at ``from_rate`` → exactly ``count`` PCM16 frames of ``frame_ms`` at ``to_rate``
    (resampled once; the end is padded with silence or cut to whole frames; digital silence
    is not resampled, so it stays exact)."""
    if from_rate == to_rate or not pcm.strip(b"\0"):  # digital silence stays exact
        converted = pcm if from_rate == to_rate else b""
    else:
        converted = resample(pcm, from_rate, to_rate)
    size = frame_size(to_rate, frame_ms)
    wanted = size * count
    converted = converted[:wanted] + bytes(max(0, wanted - len(converted)))
    return [converted[i : i + size] for i in range(0, wanted, size)]


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One binary caller frame: the PCM16 bytes themselves."""

    pcm: bytes

    def render(self, seq: int, media_ms: int, epoch_ns: int, stream: CallStream) -> bytes:
        return self.pcm


class RawCaller:
    """Raw binary PCM as a :class:`~loadtest.protocols.caller_api.CallerProtocol`.

    ``sample_rate`` is the rate of the PCM on the wire, both ways (``RAW_SAMPLE_RATE``);
    ``stop_message`` the agent's stop signal (``RAW_STOP_MESSAGE``).
    """

    name = "raw"
    echoes_marks = False

    def __init__(
        self, sample_rate: int = DEFAULT_SAMPLE_RATE, stop_message: str = DEFAULT_STOP_MESSAGE
    ) -> None:
        if sample_rate not in SUPPORTED_RATES:
            allowed = ", ".join(str(r) for r in SUPPORTED_RATES)
            raise ConfigError(
                f"RAW_SAMPLE_RATE={sample_rate} is not supported (allowed: {allowed})"
            )
        self.sample_rate = sample_rate
        self.stop = StopMatcher.parse(stop_message)

    def agent_sample_rate(self, cache_rate: int) -> int:
        return self.sample_rate

    def encode_clip(self, pcm: bytes, sample_rate: int, frame_ms: int) -> list[RawFrame]:
        count = -(-len(pcm) // frame_size(sample_rate, frame_ms))
        frames = to_rate_frames(pcm, sample_rate, self.sample_rate, frame_ms, count)
        return [RawFrame(f) for f in frames]

    def encode_silence(
        self, frames: Sequence[bytes], sample_rate: int, *, flagged: bool
    ) -> list[RawFrame]:
        # No "silent" flag on a raw stream: flagged silence is sent as zeros.
        frame_ms = len(frames[0]) // 2 * 1000 // sample_rate
        converted = to_rate_frames(
            b"".join(frames), sample_rate, self.sample_rate, frame_ms, len(frames)
        )
        return [RawFrame(f) for f in converted]

    def stream_id(self, call: CallContext) -> str:
        return ""  # a raw stream has no messages but audio

    def open_messages(self, call: CallContext, stream: CallStream) -> list[WireMessage]:
        return []

    def log_ids(self, call: CallContext, stream: CallStream) -> dict[str, str]:
        return {}  # only the connection headers name a raw stream

    def mark_echo(self, name: str, media_sent: int, stream: CallStream) -> WireMessage:
        raise NotImplementedError("a raw PCM stream has no playback marks")

    def close_messages(
        self, call: CallContext, frames_sent: int, stream: CallStream
    ) -> list[WireMessage]:
        return []

    def classify(
        self, message: WireMessage, response_tokens: tuple[str, ...], end_tokens: tuple[str, ...]
    ) -> Inbound:
        return classify(message, self.stop, response_tokens, end_tokens)
