"""ACS media streaming, agent side (sans-I/O): what the simulator reads and sends.

:func:`parse_caller` decodes caller messages (raising :class:`AcsProtocolError` with a short
``reason`` for anything that does not fit); :func:`encode_agent_audio`, :func:`encode_stop`
and :func:`encode_transcript` build the agent's messages in either :class:`Casing`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Callable
from typing import Any

from loadtest.errors import ProtocolError
from loadtest.protocols.acs._common import SAMPLE_WIDTH, get_ci
from loadtest.protocols.base import (
    CallerAudio,
    CallerDtmf,
    CallerMessage,
    CallerMetadata,
    CallerOther,
    WireMessage,
)

__all__ = [
    "TRANSCRIPT_PARTICIPANT",
    "AcsProtocolError",
    "Casing",
    "encode_agent_audio",
    "encode_stop",
    "encode_transcript",
    "parse_caller",
]


class AcsProtocolError(ProtocolError):
    """A caller message does not fit ACS; ``reason`` is a short snake_case label for counting
    (``not_json``, ``binary_frame``, ``missing_kind``, ``missing_field``, ``bad_value``,
    ``invalid_base64``, ``odd_length``, ``empty_audio``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Casing(enum.Enum):
    """Which spelling of the agent's messages to send.

    ``CAMEL``: ``{"kind":"AudioData","audioData":{"data":…}}``, ``{"kind":"StopAudio",
    "stopAudio":{}}`` (the documented shape). ``PASCAL``: ``{"Kind":"AudioData","AudioData":
    {"Data":…},"StopAudio":null}``, ``{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}``
    (what several ACS samples and the .NET SDK's serialiser send). ``SDK``: exactly what the
    JavaScript Call Automation SDK's builders return (``OutStreamingData.
    getStreamingDataForOutbound`` and ``getStopAudioForOutbound``, whose ``JSON.stringify``
    drops the undefined fields): ``{"kind":"audioData","audioData":{"data":…,"isSilent":
    false},"stopAudio":{}}`` and ``{"kind":"stopAudio","stopAudio":{}}`` — what most real ACS
    agents send. Transcripts are ACS's own messages: ``SDK`` sends the documented camel shape.
    """

    CAMEL = "camel"
    PASCAL = "pascal"
    SDK = "sdk"


Decode = Callable[[str], bytes]
"""Turns base64 text into bytes; raises ``binascii.Error``/``ValueError`` when it is not."""


def _b64(data: str) -> bytes:
    return base64.b64decode(data, validate=True)


def _loads_object(message: WireMessage) -> dict[str, Any]:
    if not isinstance(message, str):
        raise AcsProtocolError("binary_frame", f"binary frame of {len(message)} bytes")
    try:
        obj = json.loads(message)
    except (ValueError, RecursionError) as exc:
        raise AcsProtocolError("not_json", "message is not JSON") from exc
    if not isinstance(obj, dict):
        raise AcsProtocolError("not_json", "message is not a JSON object")
    return obj


def _body(obj: dict[str, Any], camel: str, kind: str) -> dict[str, Any]:
    body = get_ci(obj, camel, camel[0].upper() + camel[1:])
    if not isinstance(body, dict):
        raise AcsProtocolError("missing_field", f"{kind} without a {camel} object")
    return body


def _int_field(body: dict[str, Any], camel: str, kind: str) -> int | None:
    """A positive integer field, ``None`` when absent; channels may also be mono/stereo."""
    value = get_ci(body, camel, camel[0].upper() + camel[1:])
    if value is None:
        return None
    if camel == "channels" and isinstance(value, str) and value.lower() in _CHANNEL_NAMES:
        return _CHANNEL_NAMES[value.lower()]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise AcsProtocolError("bad_value", f"{kind} {camel}={value!r} is not a positive integer")
    return value


_CHANNEL_NAMES = {"mono": 1, "stereo": 2}


def _parse_metadata(obj: dict[str, Any]) -> CallerMetadata:
    body = _body(obj, "audioMetadata", "AudioMetadata")
    sample_rate = _int_field(body, "sampleRate", "AudioMetadata")
    if sample_rate is None:
        raise AcsProtocolError("missing_field", "AudioMetadata without sampleRate")
    channels = _int_field(body, "channels", "AudioMetadata") or 1
    encoding = get_ci(body, "encoding", "Encoding")
    if encoding is None:
        encoding = "PCM"
    if not isinstance(encoding, str):
        raise AcsProtocolError("bad_value", f"AudioMetadata encoding={encoding!r}")
    length = _int_field(body, "length", "AudioMetadata")
    frame_ms = 20
    if length is not None:
        frame_ms, rest = divmod(length * 1000, sample_rate * SAMPLE_WIDTH * channels)
        if rest or frame_ms <= 0:
            raise AcsProtocolError(
                "bad_value", f"AudioMetadata length={length} is not a whole number of ms"
            )
    return CallerMetadata(
        sample_rate=sample_rate, channels=channels, frame_ms=frame_ms, encoding=encoding
    )


def _parse_audio(
    obj: dict[str, Any], data: str | None = None, decode: Decode = _b64
) -> CallerAudio:
    """The AudioData message ``obj``; ``data`` is its base64 when the fast path cut it out."""
    body = _body(obj, "audioData", "AudioData")
    fields = {key.lower(): value for key, value in body.items()}  # one pass, any casing
    if data is None:
        data = fields.get("data")
        if not isinstance(data, str):
            raise AcsProtocolError("missing_field", "AudioData without base64 data")
    timestamp = fields.get("timestamp")
    participant = fields.get("participantrawid")
    return _audio(
        data,
        fields.get("silent", fields.get("issilent")) is True,
        timestamp if isinstance(timestamp, str) else None,
        participant if isinstance(participant, str) else None,
        decode,
    )


def _audio(
    data: str, silent: bool, timestamp: str | None, participant: str | None, decode: Decode
) -> CallerAudio:
    try:
        pcm = decode(data)
    except (binascii.Error, ValueError) as exc:
        raise AcsProtocolError("invalid_base64", "AudioData data is not valid base64") from exc
    if not pcm:
        raise AcsProtocolError("empty_audio", "AudioData carries no audio")
    if len(pcm) % SAMPLE_WIDTH:
        raise AcsProtocolError("odd_length", f"AudioData of {len(pcm)} bytes is not PCM16")
    return CallerAudio(pcm, silent, timestamp, participant)


_DATA_KEYS = ('"data":"', '"Data":"')


def _audio_fast(message: str, decode: Decode) -> CallerAudio | None:
    """AudioData the quick way, or ``None`` to take the full parser.

    The base64 string is nearly all of the message and ``json.loads`` would scan it character
    by character; here it is cut out first and decoded on its own. The documented shape
    (compact, in its order) is :func:`_documented_audio`'s; otherwise what is left is parsed
    as JSON, which is taken only when the message has exactly one ``"data":"`` key (either
    casing), its string has no escapes, and the rest is an AudioData whose ``data`` is that
    (now empty) string. Anything else — including every error — goes the full way, which
    reports it.
    """
    key = '"data":"'
    start = message.find(key)
    if start < 0:
        key = '"Data":"'
        start = message.find(key)
        if start < 0:
            return None
    begin = start + len(key)
    end = message.find('"', begin)
    if end < 0 or message.find("\\", begin, end) >= 0:
        return None
    rest = message[:begin] + message[end:]
    for other in _DATA_KEYS:
        if message.find(other, end) >= 0 or (other != key and message.find(other, 0, start) >= 0):
            return None
    try:
        obj = json.loads(rest)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or str(get_ci(obj, "kind", "Kind")).lower() != "audiodata":
        return None
    body = get_ci(obj, "audioData", "AudioData")
    if not isinstance(body, dict) or get_ci(body, "data", "Data") != "":
        return None
    return _parse_audio(obj, message[begin:end], decode)


_HEAD = '{"kind":"AudioData","audioData":{"timestamp":"'
_PARTICIPANT = '","participantRawID":"'
_DATA = '","data":"'
_TAILS = {'","silent":false}}': False, '","silent":true}}': True}


def _documented_audio(message: str, decode: Decode) -> CallerAudio | None:
    """An AudioData message exactly as ACS documents it (compact JSON, keys in the documented
    order, no escapes in its strings), else ``None``. Every caller frame of a real ACS call
    has this shape; matching it literal by literal is cheaper than a regular expression."""
    if not message.startswith(_HEAD):
        return None
    at = len(_HEAD)
    end = message.find('"', at)
    if end < 0 or not message.startswith(_PARTICIPANT, end):
        return None
    timestamp = message[at:end]
    at = end + len(_PARTICIPANT)
    end = message.find('"', at)
    if end < 0 or not message.startswith(_DATA, end):
        return None
    participant = message[at:end]
    at = end + len(_DATA)
    end = message.find('"', at)
    silent = _TAILS.get(message[end:]) if end >= 0 else None
    if (
        silent is None
        or "\\" in timestamp
        or "\\" in participant
        or message.find("\\", at, end) >= 0
    ):
        return None
    return _audio(message[at:end], silent, timestamp, participant, decode)


def _parse_dtmf(obj: dict[str, Any]) -> CallerDtmf:
    body = _body(obj, "dtmfData", "DtmfData")
    tone = get_ci(body, "data", "Data")
    if not isinstance(tone, str) or not tone:
        raise AcsProtocolError("missing_field", "DtmfData without a tone")
    return CallerDtmf(tone=tone)


def parse_caller(message: WireMessage, decode: Decode = _b64) -> CallerMessage:
    """Parse one caller message (agent side); decodes the audio.

    Returns :class:`CallerMetadata`, :class:`CallerAudio`, :class:`CallerDtmf`, or
    :class:`CallerOther` for a well-formed message of another kind. Raises
    :class:`AcsProtocolError` (a :class:`ProtocolError`) for binary frames, non-JSON, a
    missing kind or field, invalid base64, empty or odd-length audio. Sample-rate support is
    the caller's decision, not checked here. ``decode`` turns the audio's base64 into bytes
    (the simulator passes a caching one); it raises ``binascii.Error`` or ``ValueError``.
    """
    if isinstance(message, str):
        audio = _documented_audio(message, decode) or _audio_fast(message, decode)
        if audio is not None:
            return audio
    obj = _loads_object(message)
    kind = get_ci(obj, "kind", "Kind")
    if not isinstance(kind, str):
        raise AcsProtocolError("missing_kind", "message without a string kind")
    lowered = kind.lower()
    if lowered == "audiodata":
        return _parse_audio(obj, None, decode)
    if lowered == "audiometadata":
        return _parse_metadata(obj)
    if lowered == "dtmfdata":
        return _parse_dtmf(obj)
    return CallerOther(kind=kind)


def encode_agent_audio(pcm: bytes, casing: Casing = Casing.CAMEL) -> str:
    """One agent ``AudioData`` message carrying PCM16 ``pcm`` (compact JSON)."""
    data = base64.b64encode(pcm).decode("ascii")
    if casing is Casing.PASCAL:
        return '{"Kind":"AudioData","AudioData":{"Data":"' + data + '"},"StopAudio":null}'
    if casing is Casing.SDK:
        return (
            '{"kind":"audioData","audioData":{"data":"' + data + '","isSilent":false},'
            '"stopAudio":{}}'
        )
    return '{"kind":"AudioData","audioData":{"data":"' + data + '"}}'


def encode_stop(casing: Casing = Casing.CAMEL) -> str:
    """The agent's ``StopAudio`` message: the caller flushes its playback buffer."""
    if casing is Casing.PASCAL:
        return '{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}'
    if casing is Casing.SDK:
        return '{"kind":"stopAudio","stopAudio":{}}'
    return '{"kind":"StopAudio","stopAudio":{}}'


TRANSCRIPT_PARTICIPANT = (
    "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-0000000a6e17"
)
"""``participantRawID`` of the simulator's transcripts: an ACS communication user's raw id."""
_TICKS_PER_MS = 10_000  # ACS offsets and durations are in ticks of 100 ns
_WORD_EDGES = '.,;:!?"“”‘()[]'


def encode_transcript(
    text: str,
    casing: Casing = Casing.CAMEL,
    *,
    offset_ms: float = 0.0,
    duration_ms: float = 0.0,
    confidence: float = 1.0,
    participant_raw_id: str = TRANSCRIPT_PARTICIPANT,
) -> str:
    """A final ``TranscriptionData`` message for ``text`` as ACS documents it.

    ``text`` (display form), ``format`` ``display``, ``confidence``, ``offset`` and
    ``duration`` of the phrase in ticks (100 ns) from the start of the stream, ``words`` (each
    lower-cased without punctuation, with its own offset and duration: the phrase's time split
    evenly), ``participantRawID`` and ``resultStatus`` ``Final`` — the fields Microsoft's
    streaming-data parsers read (a message without ``words`` makes the JavaScript parser
    throw). ACS sends this to an agent when transcription is on; the simulator sends it to the
    caller (``--transcripts``, with its reply's offset and length) so clients can test
    ``RESPONSE_TOKENS`` matching. ``PASCAL`` spells every key with a capital.
    """
    words = [w.strip(_WORD_EDGES).lower() for w in text.split()]
    words = [w for w in words if w]
    offset = round(offset_ms * _TICKS_PER_MS)
    duration = round(duration_ms * _TICKS_PER_MS)
    step = duration // len(words) if words else 0
    entries = [
        {"text": word, "offset": offset + i * step, "duration": step}
        for i, word in enumerate(words)
    ]
    body: dict[str, Any] = {
        "text": text,
        "format": "display",
        "confidence": confidence,
        "offset": offset,
        "duration": duration,
        "words": entries,
        "participantRawID": participant_raw_id,
        "resultStatus": "Final",
    }
    message: dict[str, Any] = {"kind": "TranscriptionData", "transcriptionData": body}
    if casing is Casing.PASCAL:
        message = _pascal(message)
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _pascal(value: Any) -> Any:
    if isinstance(value, dict):
        return {key[:1].upper() + key[1:]: _pascal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_pascal(item) for item in value]
    return value
