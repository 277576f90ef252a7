"""Twilio Media Streams, agent side (sans-I/O): what the simulator reads and sends.

:func:`parse_caller` decodes what Twilio (here: the load generator) sends, µ-law audio
included, raising :class:`TwilioProtocolError` with a short ``reason`` for anything that does
not fit; :func:`encode_agent_media`, :func:`encode_clear` and :func:`encode_agent_mark` build
the three messages an agent may send back on a bidirectional stream.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from loadtest.audio.pcm import mulaw_decode
from loadtest.errors import ProtocolError
from loadtest.protocols.base import (
    CallerAudio,
    CallerDtmf,
    CallerMetadata,
    CallerOther,
    WireMessage,
)
from loadtest.protocols.twilio._common import CHANNELS, ENCODING, SAMPLE_RATE, compact, event_of

__all__ = [
    "TwilioCallerMessage",
    "TwilioProtocolError",
    "TwilioStart",
    "encode_agent_mark",
    "encode_agent_media",
    "encode_clear",
    "parse_caller",
]

_FRAME_MS = 20  # Twilio's media events carry 20 ms; the start event does not say so


class TwilioProtocolError(ProtocolError):
    """A caller message does not fit Twilio Media Streams; ``reason`` is a short snake_case
    label for counting (``not_json``, ``binary_frame``, ``missing_event``, ``missing_field``,
    ``bad_value``, ``invalid_base64``, ``empty_audio``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TwilioStart:
    """The ``start`` event: who is calling and in which format.

    ``custom_parameters`` keeps the ``<Parameter>`` values as ``(name, value)`` pairs.
    """

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: tuple[tuple[str, str], ...]
    encoding: str = ENCODING
    sample_rate: int = SAMPLE_RATE
    channels: int = CHANNELS

    @property
    def metadata(self) -> CallerMetadata:
        """The stream format in the protocol-neutral shape (20 ms frames, as Twilio sends)."""
        return CallerMetadata(
            sample_rate=self.sample_rate,
            channels=self.channels,
            frame_ms=_FRAME_MS,
            encoding=self.encoding,
        )


TwilioCallerMessage = TwilioStart | CallerAudio | CallerDtmf | CallerOther
"""What :func:`parse_caller` returns (``connected``, ``stop`` and ``mark`` are CallerOther)."""


def _loads_object(message: WireMessage) -> dict[str, Any]:
    if not isinstance(message, str):
        raise TwilioProtocolError("binary_frame", f"binary frame of {len(message)} bytes")
    try:
        obj = json.loads(message)
    except (ValueError, RecursionError) as exc:
        raise TwilioProtocolError("not_json", "message is not JSON") from exc
    if not isinstance(obj, dict):
        raise TwilioProtocolError("not_json", "message is not a JSON object")
    return obj


def _body(obj: dict[str, Any], key: str) -> dict[str, Any]:
    body = obj.get(key)
    if not isinstance(body, dict):
        raise TwilioProtocolError("missing_field", f"{key} event without a {key} object")
    return body


def _string(body: dict[str, Any], key: str, event: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise TwilioProtocolError("missing_field", f"{event} without {key}")
    return value


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TwilioProtocolError("bad_value", f"start mediaFormat {name}={value!r}")
    return value


def _parse_start(obj: dict[str, Any]) -> TwilioStart:
    body = _body(obj, "start")
    stream_sid = body.get("streamSid", obj.get("streamSid"))
    if not isinstance(stream_sid, str) or not stream_sid:
        raise TwilioProtocolError("missing_field", "start without streamSid")
    fmt = body.get("mediaFormat")
    if not isinstance(fmt, dict):
        raise TwilioProtocolError("missing_field", "start without mediaFormat")
    encoding = fmt.get("encoding")
    if not isinstance(encoding, str):
        raise TwilioProtocolError("bad_value", f"start mediaFormat encoding={encoding!r}")
    rate = _positive(fmt.get("sampleRate"), "sampleRate")
    channels = _positive(fmt.get("channels", CHANNELS), "channels")
    tracks = body.get("tracks", ["inbound"])
    params = body.get("customParameters") or {}
    if not isinstance(tracks, list) or not isinstance(params, dict):
        raise TwilioProtocolError("bad_value", "start tracks/customParameters have the wrong type")
    return TwilioStart(
        stream_sid=stream_sid,
        call_sid=str(body.get("callSid", "")),
        account_sid=str(body.get("accountSid", "")),
        tracks=tuple(str(t) for t in tracks),
        custom_parameters=tuple((str(k), str(v)) for k, v in params.items()),
        encoding=encoding,
        sample_rate=rate,
        channels=channels,
    )


def _parse_media(obj: dict[str, Any]) -> CallerAudio:
    media = _body(obj, "media")
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise TwilioProtocolError("missing_field", "media without a base64 payload")
    try:
        ulaw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TwilioProtocolError("invalid_base64", "media payload is not valid base64") from exc
    if not ulaw:
        raise TwilioProtocolError("empty_audio", "media carries no audio")
    timestamp = media.get("timestamp")
    return CallerAudio(
        pcm=mulaw_decode(ulaw),
        timestamp=timestamp if isinstance(timestamp, str) else None,
        participant=media.get("track") if isinstance(media.get("track"), str) else None,
    )


def _parse_dtmf(obj: dict[str, Any]) -> CallerDtmf:
    return CallerDtmf(tone=_string(_body(obj, "dtmf"), "digit", "dtmf"))


def parse_caller(message: WireMessage) -> TwilioCallerMessage:
    """Parse one message from Twilio (agent side); decodes µ-law media to PCM16 at 8 kHz.

    Returns :class:`TwilioStart`, :class:`CallerAudio` (``participant`` = the track),
    :class:`CallerDtmf`, or :class:`CallerOther` for ``connected``, ``stop``, ``mark`` and any
    other event. Raises :class:`TwilioProtocolError` for binary frames, non-JSON, a missing
    event or field, invalid base64 or an empty payload. Whether the format is acceptable
    (µ-law, 8 kHz, mono) is the caller's decision, not checked here.
    """
    obj = _loads_object(message)
    event = event_of(obj)
    if not isinstance(event, str):
        raise TwilioProtocolError("missing_event", "message without a string event")
    lowered = event.lower()
    if lowered == "media":
        return _parse_media(obj)
    if lowered == "start":
        return _parse_start(obj)
    if lowered == "dtmf":
        return _parse_dtmf(obj)
    return CallerOther(kind=event)


def encode_agent_media(ulaw: bytes, stream_sid: str) -> str:
    """One agent ``media`` event carrying µ-law bytes ``ulaw`` for playback to the caller."""
    payload = base64.b64encode(ulaw).decode("ascii")
    return (
        '{"event":"media","streamSid":'
        + json.dumps(stream_sid)
        + ',"media":{"payload":"'
        + payload
        + '"}}'
    )


def encode_clear(stream_sid: str) -> str:
    """The ``clear`` event: the caller drops every buffered agent frame (the barge-in signal)."""
    return compact({"event": "clear", "streamSid": stream_sid})


def encode_agent_mark(name: str, stream_sid: str) -> str:
    """A ``mark`` event after agent media; Twilio echoes it once that audio has played."""
    return compact({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})
