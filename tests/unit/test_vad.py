from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.audio import pcm
from loadtest.audio.vad import (
    SpeechSegmenter,
    VadEventKind,
    VadParams,
    speech_bounds,
)
from loadtest.errors import AudioFormatError, ConfigError
from tests.signals import bursts_in_noise


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
@pytest.mark.parametrize(("start", "end"), [(310, 810), (400, 1000), (205, 1395)])
def test_bounds_bracket_a_burst_within_one_frame(rate: int, start: int, end: int) -> None:
    audio = bursts_in_noise(rate, [(start, end)], 2000)
    bounds = speech_bounds(audio, rate)
    # On the 20 ms grid, within one frame of each true edge (a frame that holds only a
    # sliver of speech may go either way).
    assert bounds.start_ms % 20 == 0 and bounds.end_ms % 20 == 0
    assert abs(bounds.start_ms - start) < 20
    assert abs(bounds.end_ms - end) < 20


def test_bounds_span_first_to_last_burst_and_ignore_clicks() -> None:
    audio = bursts_in_noise(16000, [(100, 120), (400, 900), (1200, 1500), (1800, 1820)], 2400)
    bounds = speech_bounds(audio, 16000)
    assert (bounds.start_ms, bounds.end_ms) == (400, 1500)


def test_noise_only_audio_is_rejected() -> None:
    noise = b"".join(pcm.comfort_noise_frames(16000, 20, 50, level_dbfs=-50.0))
    with pytest.raises(AudioFormatError, match="no speech"):
        speech_bounds(noise, 16000, what="quiet.pcm")


def test_real_azure_tts_boundaries(azure_sample_dir: Path) -> None:
    for path in sorted(azure_sample_dir.glob("*.pcm")):
        data = path.read_bytes()
        bounds = speech_bounds(data, 16000)
        length_ms = pcm.duration_ms(data, 16000)
        # Azure TTS leaves ~100-150 ms before and ~300-600 ms after the words.
        assert 60 <= bounds.start_ms <= 300, path.name
        assert length_ms - 800 <= bounds.end_ms <= length_ms - 100, path.name
        # Cutting the file at the detected end must not lose speech: nothing after it.
        tail = data[bounds.end_ms * 32 :]
        with pytest.raises(AudioFormatError):
            speech_bounds(tail, 16000)


def test_segmenter_reports_the_same_edges_as_offline_bounds() -> None:
    audio = bursts_in_noise(16000, [(300, 900)], 2000)
    segmenter = SpeechSegmenter(16000, endpoint_silence_ms=500)
    events = []
    for index, frame in enumerate(pcm.split_frames(audio, 16000, 20)):
        event = segmenter.push(frame)
        if event:
            events.append((event, index))
    (start, start_at), (end, end_at) = events
    bounds = speech_bounds(audio, 16000)
    assert start.kind is VadEventKind.SPEECH_START
    assert start.frame_index * 20 == bounds.start_ms
    assert start_at == start.frame_index + 2  # declared after onset_frames=3
    assert end.kind is VadEventKind.SPEECH_END
    assert (end.frame_index + 1) * 20 == bounds.end_ms
    assert end_at == end.frame_index + 25  # 500 ms of silence later


def test_segmenter_rejects_wrong_frame_size_and_bad_settings() -> None:
    segmenter = SpeechSegmenter(16000, endpoint_silence_ms=300)
    with pytest.raises(AudioFormatError, match="expected 640"):
        segmenter.push(b"\x00" * 320)
    with pytest.raises(ConfigError):
        SpeechSegmenter(16000, endpoint_silence_ms=5)
    with pytest.raises(ConfigError):
        VadParams(frame_ms=25)


def test_level_gate_is_exact_around_the_threshold() -> None:
    """The quick RMS check (audioop, floored to an integer) settles only clear cases: every
    level within a few units of -45 dBFS is judged exactly as the float formula does."""
    from loadtest.audio.vad import _FrameClassifier

    classifier = _FrameClassifier(16000, VadParams())
    threshold = VadParams().min_level_dbfs
    rng = np.random.default_rng(3)
    shape = rng.standard_normal(320)
    shape /= np.sqrt(np.mean(shape**2))
    checked = 0
    for target in np.linspace(170.0, 200.0, 601):  # RMS in sample units; threshold ~184.3
        frame = np.round(shape * target).astype("<i2").tobytes()
        assert classifier._quiet(frame) == (pcm.rms_dbfs(frame) < threshold), target
        checked += 1
    for value in (183, 184, 185):  # constant frames: RMS exactly ``value``
        frame = np.full(320, value, dtype="<i2").tobytes()
        assert classifier._quiet(frame) == (value < 184.27)
    assert checked == 601
