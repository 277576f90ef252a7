"""The TTS interface: shared request validation, engine choice, connection check."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.audio import tts
from loadtest.errors import AudioFormatError, ConfigError, TtsError


class FakeEngine:
    """A TtsEngine that returns fixed audio or raises a fixed error."""

    name = "fake"
    default_voice = "fake-voice"

    def __init__(self, audio: bytes = b"", error: Exception | None = None) -> None:
        self.audio = audio
        self.error = error
        self.calls: list[tuple[str, int]] = []

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        rate: float = 1.0,
        style: str | None = None,
        sample_rate: int = 16000,
    ) -> bytes:
        self.calls.append((text, sample_rate))
        if self.error is not None:
            raise self.error
        return self.audio

    def describe(self) -> str:
        return "fake engine (voice fake-voice)"


def tone(seconds: float, amplitude: int, sample_rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()


@pytest.mark.parametrize("rate", [0.5, 1, 1.0, 1.37, 2.0])
@pytest.mark.parametrize("sample_rate", [8000, 16000, 24000])
def test_check_request_accepts_valid_requests(rate: float, sample_rate: int) -> None:
    assert tts.check_request("  Hello there \n", rate, sample_rate) == "Hello there"


@pytest.mark.parametrize(
    ("text", "rate", "sample_rate", "match"),
    [
        ("", 1.0, 16000, "empty"),
        (" \t\n", 1.0, 16000, "empty"),
        ("a\x00b", 1.0, 16000, "NUL"),
        ("Hi", 0.49, 16000, "rate"),
        ("Hi", 2.5, 16000, "rate"),
        ("Hi", float("inf"), 16000, "rate"),
        ("Hi", True, 16000, "rate"),
        ("Hi", 1.0, 22050, "sample rate"),
        ("Hi", 1.0, 0, "sample rate"),
    ],
)
def test_check_request_rejects(text: str, rate: float, sample_rate: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        tts.check_request(text, rate, sample_rate)
    assert "\n" not in str(info.value)


def test_make_engine_unknown_name() -> None:
    with pytest.raises(ConfigError, match="unknown TTS engine 'festival'"):
        tts.make_engine("festival", {})
    assert tts.DEFAULT_ENGINE in tts.ENGINE_NAMES


def test_make_engine_espeak_ignores_env_and_does_no_work() -> None:
    engine = tts.make_engine("ESPEAK", {"AZURE_SPEECH_KEY": "unused"})
    assert engine.name == "espeak"
    assert engine.default_voice == "en-us"
    assert "espeak-ng" in engine.describe()


def test_connection_success_line() -> None:
    engine = FakeEngine(audio=tone(1.5, 8000))
    line = tts.test_connection(engine)
    assert "\n" not in line
    assert line.startswith("fake OK")
    assert "1500 ms" in line
    assert engine.describe() in line
    assert engine.calls and engine.calls[0][1] == 16000


@pytest.mark.parametrize(
    ("audio", "match"),
    [(b"", "0 bytes"), (b"\x01\x02\x03", "3 bytes"), (bytes(32000), "silent")],
)
def test_connection_rejects_bad_audio(audio: bytes, match: str) -> None:
    with pytest.raises(TtsError, match=match):
        tts.test_connection(FakeEngine(audio=audio))


def test_connection_passes_tts_and_config_errors_through() -> None:
    tts_error = TtsError("service said no")
    with pytest.raises(TtsError) as info:
        tts.test_connection(FakeEngine(error=tts_error))
    assert info.value is tts_error
    config_error = ConfigError("unknown voice")
    with pytest.raises(ConfigError) as config_info:
        tts.test_connection(FakeEngine(error=config_error))
    assert config_info.value is config_error


def test_connection_wraps_other_loadtest_errors() -> None:
    cause = AudioFormatError("odd length")
    with pytest.raises(TtsError, match="fake: odd length") as info:
        tts.test_connection(FakeEngine(error=cause))
    assert info.value.__cause__ is cause
