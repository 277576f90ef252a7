"""Twilio Media Streams, caller side (sans-I/O): the load generator plays Twilio.

A call opens with :func:`encode_connected` and :func:`encode_start`, streams ``media`` events
pre-encoded once per process by :func:`encode_media` (only ``sequenceNumber``, ``chunk``,
``timestamp`` and the call's ``streamSid`` are filled in per send) and ends with
:func:`encode_stop`. :func:`classify` turns each agent message into an
:class:`~loadtest.protocols.base.Inbound` without decoding audio. Audio is G.711 µ-law at
8 kHz: :class:`TwilioCaller` converts the PCM16 cache once, at load time.

Sequence numbers follow Twilio: ``connected`` has none, ``start`` is ``"1"``, and every
later message takes the next one — media event ``k`` (counted from 1) has ``chunk`` ``"k"``
and ``"k+1"`` plus the mark echoes sent before it, and ``stop`` comes last. Like Twilio, the
caller echoes each agent ``mark`` (:meth:`TwilioCaller.mark_echo`) once the audio sent before
it has played, or at once when ``clear`` drops it
(:class:`~loadtest.conversation.marks.MarkEchoes`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.audio.pcm import frame_size, mulaw_encode, resample
from loadtest.protocols._match import base64_decoded_len, match_tokens
from loadtest.protocols.base import Inbound, InboundKind, WireMessage
from loadtest.protocols.caller_api import CallContext, CallStream
from loadtest.protocols.twilio._common import (
    CHANNELS,
    DEFAULT_ACCOUNT_SID,
    ENCODING,
    SAMPLE_RATE,
    compact,
    event_of,
    sid,
)

__all__ = [
    "PreEncodedMedia",
    "TwilioCaller",
    "classify",
    "encode_connected",
    "encode_dtmf",
    "encode_mark",
    "encode_media",
    "encode_start",
    "encode_stop",
    "to_mulaw_frames",
]

_PAYLOAD_KEYS = frozenset({"payload"})


def encode_connected() -> str:
    """The first message of a stream (no sequence number)."""
    return '{"event":"connected","protocol":"Call","version":"1.0.0"}'


def encode_start(
    stream_sid: str,
    call_sid: str,
    account_sid: str = DEFAULT_ACCOUNT_SID,
    custom_parameters: Mapping[str, str] | None = None,
) -> str:
    """The ``start`` event (``sequenceNumber`` ``"1"``): inbound track, µ-law 8 kHz mono."""
    return compact(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": account_sid,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {
                    "encoding": ENCODING,
                    "sampleRate": SAMPLE_RATE,
                    "channels": CHANNELS,
                },
                "customParameters": dict(custom_parameters or {}),
            },
            "streamSid": stream_sid,
        }
    )


def encode_stop(
    sequence_number: int, stream_sid: str, call_sid: str, account_sid: str = DEFAULT_ACCOUNT_SID
) -> str:
    """The ``stop`` event: the caller hung up."""
    return compact(
        {
            "event": "stop",
            "sequenceNumber": str(sequence_number),
            "stop": {"accountSid": account_sid, "callSid": call_sid},
            "streamSid": stream_sid,
        }
    )


def encode_dtmf(digit: str, sequence_number: int, stream_sid: str) -> str:
    """A ``dtmf`` event for one key press on the inbound track."""
    return compact(
        {
            "event": "dtmf",
            "streamSid": stream_sid,
            "sequenceNumber": str(sequence_number),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )


def encode_mark(name: str, sequence_number: int, stream_sid: str) -> str:
    """A ``mark`` event: Twilio echoes an agent's mark when the audio before it has played."""
    return compact(
        {
            "event": "mark",
            "sequenceNumber": str(sequence_number),
            "streamSid": stream_sid,
            "mark": {"name": name},
        }
    )


@dataclass(frozen=True, slots=True)
class PreEncodedMedia:
    """A ``media`` event encoded once, minus its counters and its stream.

    ``tail`` holds the base64 payload; :meth:`render` formats the sequence number, chunk and
    timestamp in front of it and the call's stream SID after it.
    """

    tail: str

    def render(self, seq: int, media_ms: int, epoch_ns: int, stream: CallStream) -> str:
        """The event for media frame ``seq`` (from 1) at ``media_ms`` since the stream began,
        of ``stream`` (its id is a :func:`~._common.sid`: no character needs escaping);
        ``epoch_ns`` is unused: Twilio stamps media time, not wall time."""
        return (
            f'{{"event":"media","sequenceNumber":"{seq + 1 + stream.echoes}","media":'
            f'{{"track":"inbound","chunk":"{seq}","timestamp":"{media_ms}{self.tail}"'
            f'{stream.id}"}}'
        )


def encode_media(ulaw: bytes) -> PreEncodedMedia:
    """Pre-encode one frame of µ-law bytes (see :class:`PreEncodedMedia`)."""
    payload = base64.b64encode(ulaw).decode("ascii")
    return PreEncodedMedia(tail=f'","payload":"{payload}"}},"streamSid":')


def to_mulaw_frames(pcm: bytes, sample_rate: int, frame_ms: int, count: int) -> list[bytes]:
    """PCM16 at ``sample_rate`` → exactly ``count`` µ-law frames of ``frame_ms`` at 8 kHz
    (resampled once; the end is padded with silence or cut to whole frames; digital silence
    is not resampled, so it stays exact instead of picking up the resampler's dither)."""
    if sample_rate == SAMPLE_RATE or not pcm.strip(b"\0"):  # digital silence stays exact
        at_8k = pcm if sample_rate == SAMPLE_RATE else b""
    else:
        at_8k = resample(pcm, sample_rate, SAMPLE_RATE)
    size = frame_size(SAMPLE_RATE, frame_ms)
    wanted = size * count
    at_8k = at_8k[:wanted] + bytes(max(0, wanted - len(at_8k)))
    ulaw = mulaw_encode(at_8k)
    step = size // 2
    return [ulaw[i : i + step] for i in range(0, len(ulaw), step)]


_STOP = Inbound(InboundKind.STOP)
_OTHER = Inbound(InboundKind.OTHER)
_audio_cache: dict[int, Inbound] = {}


def classify(
    message: WireMessage,
    response_tokens: tuple[str, ...] = (),
    end_tokens: tuple[str, ...] = (),
) -> Inbound:
    """Classify one message from the agent, cheaply (it runs for every inbound frame).

    * ``media`` → AUDIO; ``audio_bytes`` is twice the µ-law payload size (its PCM16
      equivalent at 8 kHz), computed from the base64 length, never decoded.
    * ``clear`` → STOP (the agent flushes what the caller has not played yet).
    * Any other event (``mark`` …) whose ``event`` value or text fields (never a ``payload``)
      contain one of ``end_tokens`` → END, else one of ``response_tokens`` → TRANSCRIPT,
      otherwise OTHER; a ``mark`` also carries its name in ``mark`` (to echo it).
    * Binary frames, invalid JSON, non-objects, a missing or non-string ``event``, ``media``
      without a base64 ``payload``, a ``mark`` without a name → MALFORMED with a short
      reason in ``detail``.
    """
    if not isinstance(message, str):
        return Inbound(InboundKind.MALFORMED, detail=f"binary frame of {len(message)} bytes")
    try:
        obj = json.loads(message)
    except (ValueError, RecursionError):
        return Inbound(InboundKind.MALFORMED, detail="invalid JSON")
    if not isinstance(obj, dict):
        return Inbound(InboundKind.MALFORMED, detail="JSON is not an object")
    event = event_of(obj)
    if isinstance(event, str):
        lowered = event.lower()
        if lowered == "media":
            return _classify_media(obj)
        if lowered == "clear":
            return _STOP
        if lowered == "mark":
            return _classify_mark(obj, response_tokens, end_tokens)
    elif event is not None:
        return Inbound(InboundKind.MALFORMED, detail="event is not a string")
    matched = match_tokens(obj, response_tokens, end_tokens, _PAYLOAD_KEYS)
    if matched is not None:
        return matched
    if event is None:
        return Inbound(InboundKind.MALFORMED, detail="missing event")
    return _OTHER


def _classify_mark(
    obj: dict[str, Any], response_tokens: tuple[str, ...], end_tokens: tuple[str, ...]
) -> Inbound:
    """A mark to echo; its text may still match the tokens (TRANSCRIPT/END, else OTHER)."""
    body = obj.get("mark")
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        return Inbound(InboundKind.MALFORMED, detail="mark event without a name")
    matched = match_tokens(obj, response_tokens, end_tokens, _PAYLOAD_KEYS)
    if matched is not None:
        return Inbound(matched.kind, detail=matched.detail, mark=name)
    return Inbound(InboundKind.OTHER, mark=name)


def _classify_media(obj: dict[str, Any]) -> Inbound:
    media = obj.get("media")
    if not isinstance(media, dict):
        return Inbound(InboundKind.MALFORMED, detail="media event without a media object")
    payload = media.get("payload")
    if not isinstance(payload, str) or not payload:
        return Inbound(InboundKind.MALFORMED, detail="media event without a base64 payload")
    size = base64_decoded_len(payload)
    if size is None:
        return Inbound(InboundKind.MALFORMED, detail="media payload is not padded base64")
    inbound = _audio_cache.get(size)
    if inbound is None:
        inbound = Inbound(InboundKind.AUDIO, audio_bytes=2 * size)
        if len(_audio_cache) < 64:
            _audio_cache[size] = inbound
    return inbound


class TwilioCaller:
    """Twilio Media Streams as a :class:`~loadtest.protocols.caller_api.CallerProtocol`.

    ``callSid`` and ``streamSid`` are derived from each call's id (``CA…`` and ``MZ…`` with the
    same digits), so every stream has its own SID, as with Twilio; ``start``, ``media`` and
    ``stop`` of a call always agree. Media frames are pre-encoded once per process and take
    the SID when rendered.
    """

    name = "twilio"
    echoes_marks = True

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        custom_parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.custom_parameters = dict(custom_parameters or {})

    def agent_sample_rate(self, cache_rate: int) -> int:
        return SAMPLE_RATE

    def call_sid(self, call: CallContext) -> str:
        """The ``callSid`` this call announces (``CA`` + the call id's hex digits)."""
        return sid("CA", call.call_id)

    def stream_id(self, call: CallContext) -> str:
        """The ``streamSid`` of this call (``MZ`` + the call id's hex digits)."""
        return sid("MZ", call.call_id)

    def encode_clip(self, pcm: bytes, sample_rate: int, frame_ms: int) -> list[PreEncodedMedia]:
        size = frame_size(sample_rate, frame_ms)
        count = -(-len(pcm) // size)  # as many frames as the cache-rate clip has
        frames = to_mulaw_frames(pcm, sample_rate, frame_ms, count)
        return [encode_media(f) for f in frames]

    def encode_silence(
        self, frames: Sequence[bytes], sample_rate: int, *, flagged: bool
    ) -> list[PreEncodedMedia]:
        # Twilio has no "silent" flag: flagged silence is sent as µ-law silence (0xFF).
        ulaw = to_mulaw_frames(
            b"".join(frames), sample_rate, _frame_ms(frames, sample_rate), len(frames)
        )
        return [encode_media(f) for f in ulaw]

    def open_messages(self, call: CallContext, stream: CallStream) -> list[WireMessage]:
        start = encode_start(
            stream.id, self.call_sid(call), self.account_sid, self.custom_parameters
        )
        return [encode_connected(), start]

    def log_ids(self, call: CallContext, stream: CallStream) -> dict[str, str]:
        return {"stream_sid": stream.id, "call_sid": self.call_sid(call)}

    def mark_echo(self, name: str, media_sent: int, stream: CallStream) -> WireMessage:
        # start was "1", then media_sent media events and stream.echoes echoes
        return encode_mark(name, media_sent + stream.echoes + 2, stream.id)

    def close_messages(
        self, call: CallContext, frames_sent: int, stream: CallStream
    ) -> list[WireMessage]:
        # start was "1", then frames_sent media events and stream.echoes echoes
        sequence = frames_sent + stream.echoes + 2
        return [encode_stop(sequence, stream.id, self.call_sid(call), self.account_sid)]

    def classify(
        self, message: WireMessage, response_tokens: tuple[str, ...], end_tokens: tuple[str, ...]
    ) -> Inbound:
        return classify(message, response_tokens, end_tokens)


def _frame_ms(frames: Sequence[bytes], sample_rate: int) -> int:
    """Duration of the first frame (all frames of a silence ring have one size), in ms."""
    return len(frames[0]) // 2 * 1000 // sample_rate
