"""The simulator's wire protocols: one codec per ``--protocol``, one session for all (core).

An :class:`AgentCodec` adapts a protocol package (:mod:`loadtest.protocols.acs`,
``.twilio``, ``.raw``) to :class:`~loadtest.agent_sim.session.AgentSession`: it parses caller
messages into the protocol-neutral types (audio as PCM16, decoded), says which stream format
it accepts, and encodes what the agent sends. Reply audio is encoded once per process
(:meth:`AgentCodec.encode_audio`); protocols whose messages name the stream (Twilio's
``streamSid``) bind those bodies to a call once, when its stream opens
(:meth:`AgentCodec.bind_audio`), so sending a frame stays a lookup.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol

from loadtest.audio.pcm import SUPPORTED_RATES, check_rate, mulaw_encode
from loadtest.errors import AudioFormatError, ConfigError
from loadtest.protocols import acs, raw, twilio
from loadtest.protocols.base import (
    CallerAudio,
    CallerDtmf,
    CallerMetadata,
    CallerOther,
    WireMessage,
)

__all__ = [
    "PROTOCOLS",
    "AcsCodec",
    "AgentCodec",
    "Parsed",
    "RawCodec",
    "Rejected",
    "RepeatDecoder",
    "StreamOpen",
    "TwilioCodec",
    "make_codec",
]

PROTOCOLS = ("acs", "twilio", "raw")


@dataclass(frozen=True, slots=True)
class StreamOpen:
    """The caller described its stream (ACS ``AudioMetadata``, Twilio ``start``).

    ``stream_id`` is what the agent's messages must name (Twilio ``streamSid``), if anything.
    """

    metadata: CallerMetadata
    stream_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A caller message that does not fit the protocol; ``reason`` is a snake_case label."""

    reason: str


Parsed = StreamOpen | CallerAudio | CallerDtmf | CallerOther | Rejected
"""What :meth:`AgentCodec.parse` returns (never raises for bad input)."""


class AgentCodec(Protocol):
    """One wire protocol, agent side, as the simulator uses it.

    Attributes:
        name: the ``--protocol`` value.
        reply_rates: sample rates to pre-encode reply audio for.
        binary_audio: reply audio goes out in binary frames (else text).
        stream_bound: reply messages name the stream, see :meth:`bind_audio`.
        declares_frame_size: the stream description fixes the caller's frame size (inbound
            frames of another size are counted as ``wrong_size``).
        labels: ``inbound_messages`` counter labels for audio, stream-open and DTMF messages.
    """

    name: str
    reply_rates: tuple[int, ...]
    binary_audio: bool
    stream_bound: bool
    declares_frame_size: bool
    labels: tuple[str, str, str]

    def parse(self, message: WireMessage) -> Parsed:
        """Decode one caller message (audio to PCM16)."""
        ...

    def other_label(self, kind: str) -> str | None:
        """Counter label of a well-formed message of another ``kind`` that belongs to the
        protocol (Twilio ``connected``, ``mark``, ``stop``); ``None``: unknown (a bad input)."""
        ...

    def implicit_open(self) -> StreamOpen | None:
        """The stream format when the protocol never sends one (raw), else ``None``."""
        ...

    def check_format(self, metadata: CallerMetadata) -> None:
        """Raise :class:`AudioFormatError` if the simulator cannot take this stream."""
        ...

    def encode_audio(self, pcm: bytes, sample_rate: int) -> bytes:
        """Body of one reply frame of PCM16 ``pcm`` (encoded once per process)."""
        ...

    def bind_audio(self, bodies: tuple[bytes, ...], stream_id: str | None) -> tuple[bytes, ...]:
        """The reply messages of one stream (``bodies`` from :meth:`encode_audio`)."""
        ...

    def stop(self, stream_id: str | None) -> WireMessage:
        """The stop signal (ACS ``StopAudio``, Twilio ``clear``, raw: configured text)."""
        ...

    def transcript(
        self, text: str, stream_id: str | None, offset_ms: float, duration_ms: float
    ) -> str | None:
        """A text message carrying ``text`` (``--transcripts``), spoken ``offset_ms`` after the
        stream opened for ``duration_ms``; ``None`` if unsupported."""
        ...

    def malformed(self, stream_id: str | None) -> str:
        """A truncated JSON text in the protocol's shape (the ``malformed_json`` fault)."""
        ...


def _check_mono(metadata: CallerMetadata, encoding: str) -> None:
    if metadata.channels != 1 or metadata.encoding.lower() != encoding.lower():
        raise AudioFormatError(
            f"unsupported audio {metadata.encoding} x{metadata.channels} ({encoding} mono only)"
        )


class RepeatDecoder:
    """base64 → bytes for caller audio, remembering recent results.

    Load callers replay a fixed set of recordings and the same comfort noise, so at scale most
    caller frames are repeats; a dictionary lookup (hashing the text) is about a tenth of
    decoding it again. Only valid base64 is remembered; the memory is bounded by ``limit``
    entries (emptied when full).
    """

    __slots__ = ("_known", "_limit")

    def __init__(self, limit: int = 8192) -> None:
        self._known: dict[str, bytes] = {}
        self._limit = limit

    def __call__(self, data: str) -> bytes:
        known = self._known.get(data)
        if known is not None:
            return known
        decoded = base64.b64decode(data, validate=True)
        if len(self._known) >= self._limit:
            self._known.clear()
        self._known[data] = decoded
        return decoded


class AcsCodec:
    """ACS media streaming (``AudioMetadata`` + ``AudioData``; ``StopAudio`` stops)."""

    name: str = "acs"
    reply_rates: tuple[int, ...] = SUPPORTED_RATES
    binary_audio: bool = False
    stream_bound: bool = False
    declares_frame_size: bool = True
    labels: tuple[str, str, str] = ("AudioData", "AudioMetadata", "DtmfData")

    def __init__(self, casing: acs.Casing = acs.Casing.CAMEL) -> None:
        self.casing = casing
        self._decode = RepeatDecoder()

    def parse(self, message: WireMessage) -> Parsed:
        try:
            parsed = acs.parse_caller(message, self._decode)
        except acs.AcsProtocolError as exc:
            return Rejected(exc.reason)
        if isinstance(parsed, CallerMetadata):
            return StreamOpen(parsed)
        return parsed

    def other_label(self, kind: str) -> str | None:
        return None

    def implicit_open(self) -> StreamOpen | None:
        return None

    def check_format(self, metadata: CallerMetadata) -> None:
        check_rate(metadata.sample_rate)
        _check_mono(metadata, "PCM")

    def encode_audio(self, pcm: bytes, sample_rate: int) -> bytes:
        return acs.encode_agent_audio(pcm, self.casing).encode()

    def bind_audio(self, bodies: tuple[bytes, ...], stream_id: str | None) -> tuple[bytes, ...]:
        return bodies

    def stop(self, stream_id: str | None) -> WireMessage:
        return acs.encode_stop(self.casing)

    def transcript(
        self, text: str, stream_id: str | None, offset_ms: float, duration_ms: float
    ) -> str | None:
        return acs.encode_transcript(
            text, self.casing, offset_ms=offset_ms, duration_ms=duration_ms
        )

    def malformed(self, stream_id: str | None) -> str:
        return '{"kind":"AudioData","audioData":{"data":"AAAA'


_TWILIO_EVENTS = frozenset({"connected", "stop", "mark"})


class TwilioCodec:
    """Twilio Media Streams (``start`` + µ-law ``media``; ``clear`` stops).

    ``--transcripts`` sends a ``mark`` named with the reply text: a bidirectional stream
    carries only ``media``, ``mark`` and ``clear`` from the agent.
    """

    name: str = "twilio"
    reply_rates: tuple[int, ...] = (twilio.SAMPLE_RATE,)
    binary_audio: bool = False
    stream_bound: bool = True
    declares_frame_size: bool = False
    labels: tuple[str, str, str] = ("media", "start", "dtmf")

    def parse(self, message: WireMessage) -> Parsed:
        try:
            parsed = twilio.parse_caller(message)
        except twilio.TwilioProtocolError as exc:
            return Rejected(exc.reason)
        if isinstance(parsed, twilio.TwilioStart):
            return StreamOpen(parsed.metadata, parsed.stream_sid)
        return parsed

    def other_label(self, kind: str) -> str | None:
        lowered = kind.lower()
        return lowered if lowered in _TWILIO_EVENTS else None

    def implicit_open(self) -> StreamOpen | None:
        return None

    def check_format(self, metadata: CallerMetadata) -> None:
        if metadata.sample_rate != twilio.SAMPLE_RATE:
            raise AudioFormatError(
                f"unsupported sample rate {metadata.sample_rate} Hz (Twilio streams 8000 Hz)"
            )
        _check_mono(metadata, twilio.ENCODING)

    def encode_audio(self, pcm: bytes, sample_rate: int) -> bytes:
        return mulaw_encode(pcm)

    def bind_audio(self, bodies: tuple[bytes, ...], stream_id: str | None) -> tuple[bytes, ...]:
        sid = stream_id or ""
        return tuple(twilio.encode_agent_media(ulaw, sid).encode() for ulaw in bodies)

    def stop(self, stream_id: str | None) -> WireMessage:
        return twilio.encode_clear(stream_id or "")

    def transcript(
        self, text: str, stream_id: str | None, offset_ms: float, duration_ms: float
    ) -> str | None:
        return twilio.encode_agent_mark(text, stream_id or "")

    def malformed(self, stream_id: str | None) -> str:
        return '{"event":"media","streamSid":"' + (stream_id or "") + '","media":{"payload":"AAAA'


class RawCodec:
    """Raw binary PCM16 at ``sample_rate`` both ways; ``stop_message`` (text) stops."""

    name: str = "raw"
    binary_audio: bool = True
    stream_bound: bool = False
    declares_frame_size: bool = False
    labels: tuple[str, str, str] = ("binary", "open", "dtmf")

    def __init__(
        self,
        sample_rate: int = raw.DEFAULT_SAMPLE_RATE,
        stop_message: str = raw.DEFAULT_STOP_MESSAGE,
    ) -> None:
        try:
            self.sample_rate = check_rate(sample_rate)
        except AudioFormatError as exc:
            raise ConfigError(f"--raw-sample-rate: {exc}") from None
        if not stop_message.strip():
            raise ConfigError("--raw-stop-message is empty: the stop signal must be set")
        self.stop_message = stop_message.strip()
        self.reply_rates: tuple[int, ...] = (self.sample_rate,)

    def parse(self, message: WireMessage) -> Parsed:
        try:
            return raw.parse_caller(message)
        except raw.RawProtocolError as exc:
            return Rejected(exc.reason)

    def other_label(self, kind: str) -> str | None:
        return "text"  # control text is allowed and ignored; its type is not a label

    def implicit_open(self) -> StreamOpen | None:
        return StreamOpen(CallerMetadata(sample_rate=self.sample_rate, encoding="PCM"))

    def check_format(self, metadata: CallerMetadata) -> None:
        check_rate(metadata.sample_rate)

    def encode_audio(self, pcm: bytes, sample_rate: int) -> bytes:
        return pcm

    def bind_audio(self, bodies: tuple[bytes, ...], stream_id: str | None) -> tuple[bytes, ...]:
        return bodies

    def stop(self, stream_id: str | None) -> WireMessage:
        return self.stop_message

    def transcript(
        self, text: str, stream_id: str | None, offset_ms: float, duration_ms: float
    ) -> str | None:
        return raw.encode_transcript(text)

    def malformed(self, stream_id: str | None) -> str:
        return '{"type":"transcript","text":"AAAA'


def make_codec(
    protocol: str,
    *,
    casing: acs.Casing = acs.Casing.CAMEL,
    raw_sample_rate: int = raw.DEFAULT_SAMPLE_RATE,
    raw_stop_message: str = raw.DEFAULT_STOP_MESSAGE,
) -> AgentCodec:
    """The codec for ``--protocol`` (raises :class:`ConfigError` naming the allowed values)."""
    if protocol == "acs":
        return AcsCodec(casing)
    if protocol == "twilio":
        return TwilioCodec()
    if protocol == "raw":
        return RawCodec(raw_sample_rate, raw_stop_message)
    raise ConfigError(f"--protocol {protocol!r} is not supported (allowed: {', '.join(PROTOCOLS)})")
