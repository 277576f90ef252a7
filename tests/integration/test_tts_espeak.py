"""Real espeak-ng synthesis through the espeakng-loader wheel (offline)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from loadtest.audio import tts
from loadtest.audio.pcm import SUPPORTED_RATES, duration_ms, rms_dbfs
from loadtest.audio.tts_espeak import EspeakEngine
from loadtest.audio.vad import speech_bounds
from loadtest.errors import ConfigError

pytestmark = pytest.mark.integration

PHRASE = "Hi there, I have a quick question"


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    return EspeakEngine()


@pytest.mark.parametrize("sample_rate", [16000, 8000, 24000])
def test_speech_at_each_rate(engine: EspeakEngine, sample_rate: int) -> None:
    pcm = engine.synthesize(PHRASE, sample_rate=sample_rate)
    assert len(pcm) % 2 == 0
    assert 800 <= duration_ms(pcm, sample_rate) <= 5000
    assert rms_dbfs(pcm) > -35.0
    samples = np.frombuffer(pcm, dtype="<i2")
    assert int(np.abs(samples).max()) > 3000  # real speech peaks, not a quiet hiss


def test_rates_agree_on_duration(engine: EspeakEngine) -> None:
    """Resampling keeps the length: every rate is the same 22.05 kHz speech."""
    durations = [duration_ms(engine.synthesize(PHRASE, sample_rate=r), r) for r in SUPPORTED_RATES]
    assert max(durations) - min(durations) < 1.0


def test_vad_finds_the_speech(engine: EspeakEngine) -> None:
    pcm = engine.synthesize(PHRASE, sample_rate=16000)
    bounds = speech_bounds(pcm, 16000)
    assert 0 <= bounds.start_ms < bounds.end_ms <= duration_ms(pcm, 16000)
    assert bounds.end_ms - bounds.start_ms >= 800


def test_deterministic_even_after_other_synthesis(engine: EspeakEngine) -> None:
    """libespeak-ng drifts between calls in one process; the engine must not."""
    first = engine.synthesize(PHRASE, sample_rate=16000)
    engine.synthesize("Something else entirely, spoken in between.", rate=1.7, voice="en-gb")
    again = engine.synthesize(PHRASE, sample_rate=16000)
    fresh_engine = EspeakEngine().synthesize(PHRASE, sample_rate=16000)
    assert hashlib.sha256(first).digest() == hashlib.sha256(again).digest()
    assert first == fresh_engine


def test_parallel_calls_are_deterministic(engine: EspeakEngine) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: engine.synthesize(PHRASE, sample_rate=8000), range(6)))
    assert len(set(results)) == 1


def test_faster_rate_is_shorter(engine: EspeakEngine) -> None:
    normal = duration_ms(engine.synthesize(PHRASE, rate=1.0), 16000)
    fast = duration_ms(engine.synthesize(PHRASE, rate=1.5), 16000)
    slow = duration_ms(engine.synthesize(PHRASE, rate=0.5), 16000)
    assert fast < normal * 0.85
    assert slow > normal * 1.3


def test_voices_differ_and_language_names_work(engine: EspeakEngine) -> None:
    us = engine.synthesize(PHRASE)
    gb = engine.synthesize(PHRASE, voice="en-gb")  # a language, not a voice file name
    assert gb != us
    assert rms_dbfs(gb) > -35.0


def test_style_is_ignored(engine: EspeakEngine) -> None:
    assert engine.synthesize(PHRASE, style="cheerful") == engine.synthesize(PHRASE)


def test_unknown_voice(engine: EspeakEngine) -> None:
    with pytest.raises(ConfigError, match=r"unknown espeak voice 'xx-nowhere' \(try en-us"):
        engine.synthesize(PHRASE, voice="xx-nowhere")
    with pytest.raises(ConfigError, match="invalid espeak voice"):
        EspeakEngine(default_voice="")


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text(engine: EspeakEngine, text: str) -> None:
    with pytest.raises(ConfigError, match="empty"):
        engine.synthesize(text)


@pytest.mark.parametrize(("rate", "sample_rate"), [(0.3, 16000), (2.5, 16000), (1.0, 44100)])
def test_bad_arguments(engine: EspeakEngine, rate: float, sample_rate: int) -> None:
    with pytest.raises(ConfigError):
        engine.synthesize(PHRASE, rate=rate, sample_rate=sample_rate)


def test_non_ascii_text(engine: EspeakEngine) -> None:
    pcm = engine.synthesize("Café au lait — naïve façade, 10 € please", sample_rate=16000)
    assert duration_ms(pcm, 16000) > 1000
    assert rms_dbfs(pcm) > -35.0


def test_connection_check() -> None:
    line = tts.test_connection(tts.make_engine("espeak", {}))
    assert line.startswith("espeak OK")
    assert "\n" not in line
