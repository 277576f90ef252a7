"""Golden wire tests of raw binary PCM, both sides (binary PCM16 frames, text control)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from loadtest.audio.pcm import comfort_noise_frames, resample
from loadtest.errors import ConfigError, ProtocolError
from loadtest.protocols import caller_protocol, raw
from loadtest.protocols.base import CallerAudio, CallerOther, Inbound, InboundKind
from loadtest.protocols.caller_api import CallStream
from loadtest.settings import parse_settings

PCM = bytes(range(256)) * 2 + bytes(128)  # 640 bytes: 20 ms at 16 kHz
STOP = raw.StopMatcher.parse(raw.DEFAULT_STOP_MESSAGE)


@dataclass
class Call:
    call_id: str = "call-1"
    sample_rate: int = 16000
    frame_ms: int = 20


# ----------------------------------------------------------------------------- caller side


def test_frames_are_the_pcm_itself() -> None:
    caller = raw.RawCaller()
    assert caller.name == "raw" and caller.agent_sample_rate(24000) == 16000
    frames = caller.encode_clip(PCM * 3 + PCM[:100], 16000, 20)
    assert [f.render(k + 1, 20 * k, 0, CallStream("")) for k, f in enumerate(frames)] == [
        PCM,
        PCM,
        PCM,
        PCM[:100] + bytes(540),  # the last frame padded with silence
    ]
    assert (
        caller.open_messages(Call(), CallStream("")) == []
        and caller.close_messages(Call(), 4, CallStream("")) == []
    )


def test_clip_resampled_once_to_the_wire_rate() -> None:
    caller = raw.RawCaller(sample_rate=8000)
    t = np.arange(1600) / 16000  # 100 ms at 16 kHz
    pcm16k = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()
    frames = caller.encode_clip(pcm16k, 16000, 20)
    assert len(frames) == 5 and all(len(f.pcm) == 320 for f in frames)
    assert b"".join(f.pcm for f in frames) == resample(pcm16k, 16000, 8000)
    assert caller.agent_sample_rate(16000) == 8000


def test_silence_frames() -> None:
    caller = raw.RawCaller(sample_rate=24000)
    (zeros,) = caller.encode_silence([bytes(640)], 16000, flagged=True)
    assert zeros.render(1, 0, 0, CallStream("")) == bytes(960)  # exact zeros, not resampler dither
    noise = caller.encode_silence(comfort_noise_frames(16000, 20, 50), 16000, flagged=False)
    assert len(noise) == 50 and all(len(f.pcm) == 960 for f in noise)


def test_registry_takes_rate_and_stop_message() -> None:
    settings = parse_settings(
        {"WS_PROTOCOL": "raw", "RAW_SAMPLE_RATE": "24000", "RAW_STOP_MESSAGE": "STOP"}
    )
    caller = caller_protocol("raw", settings)
    assert isinstance(caller, raw.RawCaller)
    assert caller.agent_sample_rate(16000) == 24000
    assert caller.classify(" stop ", (), ()).kind is InboundKind.STOP
    assert caller.classify('{"type":"interrupt"}', (), ()).kind is InboundKind.OTHER
    default = caller_protocol("raw")
    assert isinstance(default, raw.RawCaller) and default.sample_rate == 16000


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("RAW_SAMPLE_RATE", "44100", "RAW_SAMPLE_RATE='44100' is invalid: allowed: 8000"),
        ("RAW_STOP_MESSAGE", "  ", "RAW_STOP_MESSAGE='  ' is invalid"),
        ("WS_PROTOCOL", "sip", "allowed: acs, twilio, raw"),
    ],
)
def test_bad_settings(env: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({env: value})


def test_bad_constructor_values() -> None:
    with pytest.raises(ConfigError, match="RAW_SAMPLE_RATE=44100"):
        raw.RawCaller(44100)
    with pytest.raises(ConfigError, match="RAW_STOP_MESSAGE is empty"):
        raw.StopMatcher.parse("")


# ----------------------------------------------------------------------------- classify


def test_binary_is_agent_audio() -> None:
    assert raw.classify(PCM, STOP) == Inbound(InboundKind.AUDIO, audio_bytes=640)
    assert raw.classify(bytes(4800), STOP).audio_bytes == 4800  # any length of whole samples
    assert raw.classify(b"", STOP) == Inbound(
        InboundKind.MALFORMED, detail="binary frame of 0 bytes"
    )
    assert raw.classify(bytes(97), STOP) == Inbound(
        InboundKind.MALFORMED, detail="binary frame of 97 bytes"
    )


@pytest.mark.parametrize(
    "message",
    [
        '{"type":"interrupt"}',
        '{"type": "Interrupt", "id": 7}',
        '{"TYPE":"INTERRUPT","reason":"barge-in"}',
        '  {"type":"interrupt"}\n',
    ],
)
def test_json_stop_message_matches_by_fields(message: str) -> None:
    assert raw.classify(message, STOP) == Inbound(InboundKind.STOP)


@pytest.mark.parametrize(
    "message", ['{"type":"interrupted"}', '{"event":"interrupt"}', "interrupt", '["interrupt"]']
)
def test_near_misses_are_not_the_stop(message: str) -> None:
    assert raw.classify(message, STOP).kind is InboundKind.OTHER


def test_text_stop_message_matches_exactly() -> None:
    stop = raw.StopMatcher.parse("CLEAR")
    assert raw.classify("clear", stop).kind is InboundKind.STOP
    assert raw.classify("clear now", stop).kind is InboundKind.OTHER
    nested = raw.StopMatcher.parse('{"event":"clear","data":{"all":true}}')
    assert raw.classify('{"event":"clear","data":{"all":true},"seq":3}', nested).kind is (
        InboundKind.STOP
    )
    assert raw.classify('{"event":"clear","data":{"all":false}}', nested).kind is (
        InboundKind.OTHER
    )


def test_text_frames_and_tokens() -> None:
    transcript = raw.encode_transcript("Sure, I can HELP")
    assert transcript == '{"type":"transcript","text":"Sure, I can HELP"}'
    assert raw.classify(transcript, STOP) == Inbound(InboundKind.OTHER)
    assert raw.classify(transcript, STOP, response_tokens=("help",)) == Inbound(
        InboundKind.TRANSCRIPT, detail="Sure, I can HELP"
    )
    assert raw.classify(transcript, STOP, ("help",), ("sure",)).kind is InboundKind.END
    assert raw.classify("goodbye!", STOP, end_tokens=("bye",)) == Inbound(
        InboundKind.END, detail="goodbye!"
    )
    audio_json = json.dumps({"type": "audio", "audio": "QUJDYnll", "payload": "Ynll"})
    assert raw.classify(audio_json, STOP, end_tokens=("bye",)).kind is InboundKind.OTHER


@pytest.mark.parametrize("message", ['{"type":"transcript","text":"AAAA', "[1, 2"])
def test_broken_json_is_malformed(message: str) -> None:
    assert raw.classify(message, STOP) == Inbound(InboundKind.MALFORMED, detail="invalid JSON")


# ----------------------------------------------------------------------------- agent side


def test_parse_caller() -> None:
    assert raw.parse_caller(PCM) == CallerAudio(pcm=PCM)
    assert raw.parse_caller(bytearray(PCM)) == CallerAudio(pcm=PCM)
    assert raw.parse_caller('{"type":"config","rate":16000}') == CallerOther("config")
    assert raw.parse_caller('{"event":"hello"}') == CallerOther("hello")
    assert raw.parse_caller("ping") == CallerOther("text")
    assert raw.parse_caller("[1]") == CallerOther("text")


@pytest.mark.parametrize(("message", "reason"), [(b"", "empty_audio"), (b"\x00" * 7, "odd_length")])
def test_parse_caller_rejects(message: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        raw.parse_caller(message)
    assert isinstance(info.value, raw.RawProtocolError)
    assert info.value.reason == reason and str(info.value)


def test_core_imports_without_gevent() -> None:
    code = (
        "import sys, loadtest.protocols.raw, loadtest.protocols; "
        "assert 'gevent' not in sys.modules and 'websockets' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
