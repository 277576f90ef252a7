"""ACS media streaming, caller side (sans-I/O): what the load generator sends and hears.

:func:`encode_metadata` opens a call; :func:`encode_frame` pre-encodes a PCM frame once so a
send only inserts the timestamp (:func:`iso_timestamp`); :func:`classify` turns each agent
message into an :class:`~loadtest.protocols.base.Inbound` without decoding audio.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.audio.pcm import split_frames
from loadtest.protocols._match import base64_decoded_len, match_tokens
from loadtest.protocols.acs._common import SAMPLE_WIDTH, get_ci
from loadtest.protocols.base import Inbound, InboundKind, WireMessage
from loadtest.protocols.caller_api import CallContext, CallStream

__all__ = [
    "DEFAULT_PARTICIPANT",
    "DEFAULT_SUBSCRIPTION_ID",
    "AcsCaller",
    "PreEncodedFrame",
    "classify",
    "encode_audio_data",
    "encode_dtmf",
    "encode_frame",
    "encode_metadata",
    "iso_timestamp",
]

DEFAULT_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_PARTICIPANT = "8:acs:voice-loadtest"
_SKIP_KEYS = frozenset({"data"})  # never match tokens inside audio payloads


def encode_metadata(
    sample_rate: int,
    channels: int = 1,
    frame_ms: int = 20,
    *,
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID,
) -> str:
    """The first message of a call: the stream's format.

    ``length`` is the size in bytes of one ``frame_ms`` frame of PCM16 (640 for 20 ms at
    16 kHz mono), as ACS sends it.
    """
    length = sample_rate * frame_ms // 1000 * SAMPLE_WIDTH * channels
    body = {
        "subscriptionId": subscription_id,
        "encoding": "PCM",
        "sampleRate": sample_rate,
        "channels": channels,
        "length": length,
    }
    return json.dumps({"kind": "AudioMetadata", "audioMetadata": body}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PreEncodedFrame:
    """An ``AudioData`` message encoded once, minus its timestamp.

    ``render(ts)`` is ``prefix + ts + suffix``: the base64 and JSON work was done when the
    frame was built, so sending costs one string concatenation.
    """

    prefix: str
    suffix: str

    def render(self, timestamp_iso: str) -> str:
        """The full JSON text with ``timestamp_iso`` (from :func:`iso_timestamp`) inserted."""
        return self.prefix + timestamp_iso + self.suffix

    def render_utf8(self, timestamp_iso: str) -> bytes:
        """:meth:`render` as UTF-8 bytes, for ``send(..., text=True)`` without re-encoding."""
        return (self.prefix + timestamp_iso + self.suffix).encode()


def encode_frame(
    pcm: bytes, *, participant_raw_id: str = DEFAULT_PARTICIPANT, silent: bool = False
) -> PreEncodedFrame:
    """Pre-encode one caller frame of PCM16 ``pcm`` (see :class:`PreEncodedFrame`)."""
    data = base64.b64encode(pcm).decode("ascii")
    participant = json.dumps(participant_raw_id)
    return PreEncodedFrame(
        prefix='{"kind":"AudioData","audioData":{"timestamp":"',
        suffix=(
            f'","participantRawID":{participant},"data":"{data}",'
            f'"silent":{"true" if silent else "false"}}}}}'
        ),
    )


def encode_audio_data(
    pcm: bytes,
    timestamp_iso: str,
    *,
    participant_raw_id: str = DEFAULT_PARTICIPANT,
    silent: bool = False,
) -> str:
    """One caller ``AudioData`` message (encodes every time; prefer :func:`encode_frame`)."""
    frame = encode_frame(pcm, participant_raw_id=participant_raw_id, silent=silent)
    return frame.render(timestamp_iso)


def encode_dtmf(tone: str) -> str:
    """A caller ``DtmfData`` message for one tone (``0-9``, ``*``, ``#``, ``A-D``)."""
    return json.dumps({"kind": "DtmfData", "dtmfData": {"data": tone}}, separators=(",", ":"))


_iso_second_cache: tuple[int, str] = (-1, "")
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def iso_timestamp(epoch_ns: int) -> str:
    """Format ``epoch_ns`` (Unix epoch, nanoseconds) as ISO-8601 UTC with milliseconds.

    ``iso_timestamp(1731698172925000000) == "2024-11-15T19:16:12.925Z"``. The date part is
    cached per second and the millisecond parts are made once, so a call is one division and
    one concatenation (it runs for every frame sent).
    """
    global _iso_second_cache
    seconds, rest_ns = divmod(epoch_ns, 1_000_000_000)
    cached_seconds, prefix = _iso_second_cache
    if seconds != cached_seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _iso_second_cache = (seconds, prefix)
    return prefix + _MILLIS[rest_ns // 1_000_000]


_STOP = Inbound(InboundKind.STOP)
_OTHER = Inbound(InboundKind.OTHER)
_audio_cache: dict[int, Inbound] = {}


def classify(
    message: WireMessage,
    response_tokens: tuple[str, ...] = (),
    end_tokens: tuple[str, ...] = (),
) -> Inbound:
    """Classify one message from the agent, cheaply (it runs for every inbound frame).

    * ``AudioData`` → AUDIO; ``audio_bytes`` is computed from the base64 length and padding,
      the payload is never decoded.
    * ``StopAudio`` → STOP.
    * Any other message whose ``kind`` value or text fields (never a ``data`` payload) contain
      one of ``end_tokens`` → END, else one of ``response_tokens`` → TRANSCRIPT (substring,
      case-insensitive; ``detail`` is the matching text). Otherwise → OTHER.
    * Binary frames, invalid JSON, non-objects, a missing or non-string ``kind``, AudioData
      without a base64 ``data`` string → MALFORMED with a short reason in ``detail``.
    """
    if not isinstance(message, str):
        return Inbound(InboundKind.MALFORMED, detail=f"binary frame of {len(message)} bytes")
    for head, tail in _AUDIO_SHAPES:
        # The agent's audio as it is usually written, recognised without parsing the whole
        # message (the most frequent inbound one): json's own C string scanner reads the
        # payload; when that string closes exactly where the shape's tail begins, the message
        # is that JSON object, so the answer is the one the full parse would give.
        if message.startswith(head) and message.endswith(tail):
            try:
                data, end = _scanstring(message, len(head))
            except ValueError:
                break  # not valid JSON here: the full parse says how
            if end == len(message) - len(tail) + 1 and data:
                return _audio_of(data)
    return _classify_json(message, response_tokens, end_tokens)


# json's string scanner (its C one where built): undocumented in typeshed, stable since 2.6.
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_AUDIO_SHAPES = (  # (up to the payload's opening quote, from its closing quote)
    ('{"kind":"AudioData","audioData":{"data":"', '"}}'),
    ('{"Kind":"AudioData","AudioData":{"Data":"', '"},"StopAudio":null}'),
)


def _classify_json(
    message: str, response_tokens: tuple[str, ...], end_tokens: tuple[str, ...]
) -> Inbound:
    try:
        obj = json.loads(message)
    except (ValueError, RecursionError):
        return Inbound(InboundKind.MALFORMED, detail="invalid JSON")
    if not isinstance(obj, dict):
        return Inbound(InboundKind.MALFORMED, detail="JSON is not an object")
    kind = get_ci(obj, "kind", "Kind")
    if isinstance(kind, str):
        lowered = kind.lower()
        if lowered == "audiodata":
            return _classify_audio(obj)
        if lowered == "stopaudio":
            return _STOP
    elif kind is not None:
        return Inbound(InboundKind.MALFORMED, detail="kind is not a string")
    matched = match_tokens(obj, response_tokens, end_tokens, _SKIP_KEYS)
    if matched is not None:
        return matched
    if kind is None:
        return Inbound(InboundKind.MALFORMED, detail="missing kind")
    return _OTHER


def _classify_audio(obj: dict[str, Any]) -> Inbound:
    body = get_ci(obj, "audioData", "AudioData")
    if not isinstance(body, dict):
        return Inbound(InboundKind.MALFORMED, detail="AudioData without an audioData object")
    data = get_ci(body, "data", "Data")
    if not isinstance(data, str) or not data:
        return Inbound(InboundKind.MALFORMED, detail="AudioData without base64 data")
    return _audio_of(data)


def _audio_of(data: str) -> Inbound:
    size = base64_decoded_len(data)
    if size is None:
        return Inbound(InboundKind.MALFORMED, detail="AudioData data is not padded base64")
    inbound = _audio_cache.get(size)
    if inbound is None:
        inbound = Inbound(InboundKind.AUDIO, audio_bytes=size)
        if len(_audio_cache) < 64:
            _audio_cache[size] = inbound
    return inbound


@dataclass(frozen=True, slots=True)
class _AcsFrame:
    frame: PreEncodedFrame

    def render(self, seq: int, media_ms: int, epoch_ns: int, stream: CallStream) -> str:
        return self.frame.render(iso_timestamp(epoch_ns))


class AcsCaller:
    """ACS as a :class:`~loadtest.protocols.caller_api.CallerProtocol`."""

    name = "acs"
    echoes_marks = False

    def agent_sample_rate(self, cache_rate: int) -> int:
        return cache_rate  # the agent answers in the format the caller declared

    def encode_clip(self, pcm: bytes, sample_rate: int, frame_ms: int) -> list[_AcsFrame]:
        return [_AcsFrame(encode_frame(f)) for f in split_frames(pcm, sample_rate, frame_ms)]

    def encode_silence(
        self, frames: Sequence[bytes], sample_rate: int, *, flagged: bool
    ) -> list[_AcsFrame]:
        return [_AcsFrame(encode_frame(f, silent=flagged)) for f in frames]

    def stream_id(self, call: CallContext) -> str:
        return ""  # ACS frames do not name their call

    def open_messages(self, call: CallContext, stream: CallStream) -> list[WireMessage]:
        return [encode_metadata(call.sample_rate, 1, call.frame_ms)]

    def log_ids(self, call: CallContext, stream: CallStream) -> dict[str, str]:
        return {}  # the connection headers name an ACS call

    def mark_echo(self, name: str, media_sent: int, stream: CallStream) -> WireMessage:
        raise NotImplementedError("ACS media streaming has no playback marks")

    def close_messages(
        self, call: CallContext, frames_sent: int, stream: CallStream
    ) -> list[WireMessage]:
        return []

    def classify(
        self, message: WireMessage, response_tokens: tuple[str, ...], end_tokens: tuple[str, ...]
    ) -> Inbound:
        return classify(message, response_tokens, end_tokens)
