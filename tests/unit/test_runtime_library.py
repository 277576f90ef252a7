"""Caller audio as the harness streams it: the recording's speech boundaries on every wire grid.

End of speech is decided once, on the recording at the cache's rate, and mapped onto each wire
format's frame grid: the EOS frame is the last frame any part of which lies before
``speech_end_ms``. Every built-in utterance (espeak, at 16 and 24 kHz) and the real Azure TTS
sample (a legacy cache: boundaries computed once on load) are checked on ACS PCM, Twilio 8 kHz
µ-law and raw PCM at 8/16/24 kHz, with 10, 20 and 40 ms frames: the wire frames are decoded as
an agent would and must carry the recording on the same time grid.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import pytest

from loadtest.agent_sim.codecs import make_codec
from loadtest.audio.cache import AudioCache, load_cache
from loadtest.audio.pcm import frame_size, resample
from loadtest.audio.vad import speech_bounds
from loadtest.protocols.base import CallerAudio
from loadtest.protocols.caller_api import CallStream
from loadtest.runtime.library import AudioLibrary
from loadtest.settings import parse_settings
from tests.conftest import espeak_cache

WIRES = {  # name → (WS_PROTOCOL, extra settings, the agent codec that decodes it)
    "acs-pcm": ("acs", {}, make_codec("acs")),
    "twilio-mulaw-8k": ("twilio", {}, make_codec("twilio")),
    "raw-8k": ("raw", {"RAW_SAMPLE_RATE": "8000"}, make_codec("raw", raw_sample_rate=8000)),
    "raw-16k": ("raw", {"RAW_SAMPLE_RATE": "16000"}, make_codec("raw", raw_sample_rate=16000)),
    "raw-24k": ("raw", {"RAW_SAMPLE_RATE": "24000"}, make_codec("raw", raw_sample_rate=24000)),
}


@pytest.fixture(scope="module")
def espeak_cache_24k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in scenarios synthesised at 24 kHz (ACS's 24 kHz PCM format)."""
    return espeak_cache(tmp_path_factory.mktemp("espeak-cache-24k"), 24000)


def _decode(codec: object, message: str | bytes) -> bytes:
    parsed = codec.parse(message)  # type: ignore[attr-defined]
    assert isinstance(parsed, CallerAudio), parsed
    return parsed.pcm


def _lag_samples(heard: np.ndarray, source: np.ndarray, max_lag: int) -> int:
    """The shift of ``heard`` against ``source`` with the largest correlation."""
    n = min(heard.size, source.size) - 2 * max_lag
    ref = source[max_lag : max_lag + n]
    scores = [
        float(heard[max_lag + lag : max_lag + lag + n] @ ref)
        for lag in range(-max_lag, max_lag + 1)
    ]
    return int(np.argmax(scores)) - max_lag


def _check_cache(cache: AudioCache) -> int:
    """Every wire × frame length for every clip of ``cache``; returns the clips × grids checked."""
    checked = 0
    rate = cache.sample_rate
    for wire, (protocol, extra, codec) in WIRES.items():
        for chunk_ms in (10, 20, 40):
            raw = {"WS_PROTOCOL": protocol, "CHUNK_MS": str(chunk_ms), **extra}
            library = AudioLibrary.from_cache(cache, parse_settings(raw))
            turns = {t.key: t for s in library.scenarios for t in s.turns}
            wire_rate = library.agent_sample_rate
            for clips in cache.scenarios.values():
                for clip in clips:
                    key, end_ms = clip.entry.filename, clip.speech_end_ms
                    turn = turns[key]
                    where = f"{wire} {chunk_ms} ms {key}"
                    # the source boundary mapped to this grid
                    assert turn.eos_frame == math.ceil(end_ms / chunk_ms) - 1, where
                    assert turn.eos_frame * chunk_ms < end_ms <= (turn.eos_frame + 1) * chunk_ms
                    assert turn.speech_start_frame == clip.speech_start_ms // chunk_ms, where
                    # ... and the wire's frame k carries the recording's [k, k+1) × chunk_ms
                    frames = library.frames[key]
                    assert (
                        len(frames)
                        == turn.frame_count
                        == -(-len(clip.pcm) // frame_size(rate, chunk_ms))
                    )
                    stream = CallStream("MZ0")
                    heard = b"".join(
                        _decode(codec, f.render(i + 1, i * chunk_ms, 0, stream))
                        for i, f in enumerate(frames)
                    )
                    assert len(heard) == len(frames) * frame_size(wire_rate, chunk_ms), where
                    back = np.frombuffer(resample(heard, wire_rate, rate), "<i2").astype(float)
                    source = np.frombuffer(clip.pcm, "<i2").astype(float)
                    assert _lag_samples(back, source, rate // 1000) == 0, where
                    checked += 1
    return checked


def test_eos_frame_is_the_recordings_boundary_on_every_wire_format(
    espeak_cache_dir: Path, espeak_cache_24k: Path
) -> None:
    for directory in (espeak_cache_dir, espeak_cache_24k):
        cache = load_cache(directory)
        assert cache.warnings == ()  # generate-audio stored the boundaries
        assert sum(len(c) for c in cache.scenarios.values()) == 8
        assert _check_cache(cache) == 8 * len(WIRES) * 3


def test_real_azure_speech_keeps_its_boundaries_on_every_wire_format(
    azure_sample_dir: Path,
) -> None:
    cache = load_cache(azure_sample_dir)
    (warning,) = cache.warnings
    assert (
        "8 file(s) without speech boundaries; computed once, at the cache's rate (16000 Hz)"
        in warning
    )
    for clips in cache.scenarios.values():
        for clip in clips:  # computed on the recording itself, at 16 kHz
            bounds = speech_bounds(clip.pcm, 16000)
            assert (clip.speech_start_ms, clip.speech_end_ms) == (bounds.start_ms, bounds.end_ms)
    assert _check_cache(cache) == 8 * len(WIRES) * 3


def test_band_limiting_does_not_move_the_end_of_speech(azure_sample_dir: Path) -> None:
    """Detecting speech again on the 8 kHz audio ends "…account balance?" 160 ms and
    "…an accident?" 80 ms early; the Twilio caller keeps the recording's instant."""
    cache = load_cache(azure_sample_dir)
    library = AudioLibrary.from_cache(cache, parse_settings({"WS_PROTOCOL": "twilio"}))
    turns = {t.key: t for s in library.scenarios for t in s.turns}
    moved = 0
    for clips in cache.scenarios.values():
        for clip in clips:
            at_8k = speech_bounds(resample(clip.pcm, 16000, 8000), 8000)
            if at_8k.end_ms != clip.speech_end_ms:
                moved += 1
                assert turns[clip.entry.filename].eos_frame == clip.speech_end_ms // 20 - 1
    assert moved == 2  # the two utterances whose trailing sound fades below the 8 kHz VAD


def test_acs_frames_carry_the_recording_unchanged(azure_sample_dir: Path) -> None:
    cache = load_cache(azure_sample_dir)
    library = AudioLibrary.from_cache(cache, parse_settings({"CHUNK_MS": "20"}))
    clip = cache.scenarios["quick_question"][0]
    first = library.frames[clip.entry.filename][0].render(1, 0, 0, CallStream(""))
    data = json.loads(first)["audioData"]["data"]
    assert base64.b64decode(data) == clip.pcm[:640]
