"""Raw binary PCM, agent side (sans-I/O): what the simulator reads and sends.

:func:`parse_caller` turns a binary frame into :class:`CallerAudio` (PCM16 as is) and a text
frame into :class:`CallerOther` (its JSON ``type``/``event``/``kind``, else ``"text"``),
raising :class:`RawProtocolError` for empty or odd-length audio. The stream format is not on
the wire: both ends are configured with the same rate. The agent's audio is the PCM bytes
themselves (binary frames); :func:`encode_transcript` builds the optional text message; the
stop message is whatever the deployment uses (``RAW_STOP_MESSAGE``).
"""

from __future__ import annotations

import json

from loadtest.errors import ProtocolError
from loadtest.protocols.base import CallerAudio, CallerOther, WireMessage

__all__ = ["RawCallerMessage", "RawProtocolError", "encode_transcript", "parse_caller"]

_KIND_KEYS = ("type", "event", "kind")


class RawProtocolError(ProtocolError):
    """A caller frame does not fit raw PCM16; ``reason`` is ``empty_audio`` or
    ``odd_length``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


RawCallerMessage = CallerAudio | CallerOther
"""What :func:`parse_caller` returns."""


def parse_caller(message: WireMessage) -> RawCallerMessage:
    """Parse one caller frame (agent side): binary → :class:`CallerAudio`, text →
    :class:`CallerOther`. Raises :class:`RawProtocolError` for empty or odd-length audio."""
    if isinstance(message, str):
        return CallerOther(kind=_text_kind(message))
    if not message:
        raise RawProtocolError("empty_audio", "binary frame of 0 bytes")
    if len(message) % 2:
        raise RawProtocolError("odd_length", f"binary frame of {len(message)} bytes is not PCM16")
    return CallerAudio(pcm=bytes(message))


def _text_kind(text: str) -> str:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return "text"
    if isinstance(obj, dict):
        for key in _KIND_KEYS:
            value = obj.get(key)
            if isinstance(value, str) and value:
                return value
    return "text"


def encode_transcript(text: str) -> str:
    """A ``{"type":"transcript","text":…}`` text frame (what the simulator's ``--transcripts``
    sends, so clients can test ``RESPONSE_TOKENS`` matching)."""
    return json.dumps({"type": "transcript", "text": text}, separators=(",", ":"))
