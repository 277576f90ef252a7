from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loadtest.audio import pcm
from loadtest.errors import AudioFormatError


def test_frame_size_at_each_rate() -> None:
    assert pcm.frame_size(16000, 20) == 640
    assert pcm.frame_size(8000, 20) == 320
    assert pcm.frame_size(24000, 20) == 960


def test_frame_size_rejects_fractional_samples() -> None:
    with pytest.raises(AudioFormatError, match="whole number"):
        pcm.frame_size(22050, 1)


def test_split_frames_pads_last_frame_with_silence() -> None:
    data = bytes(range(256)) * 5  # 1280 bytes = 2 frames at 16 kHz, plus nothing
    frames = pcm.split_frames(data + b"\x01\x02", 16000, 20)
    assert [len(f) for f in frames] == [640, 640, 640]
    assert b"".join(frames)[: len(data) + 2] == data + b"\x01\x02"
    assert frames[-1][2:] == bytes(638)


@pytest.mark.parametrize(
    ("data", "message"), [(b"", "empty"), (b"\x00\x01\x02", "odd byte length")]
)
def test_check_pcm_rejects(data: bytes, message: str) -> None:
    with pytest.raises(AudioFormatError, match=message):
        pcm.check_pcm(data, what="x.pcm")


def test_check_rate() -> None:
    assert pcm.check_rate(24000) == 24000
    with pytest.raises(AudioFormatError, match="44100"):
        pcm.check_rate(44100)


def test_duration_and_silence() -> None:
    assert pcm.duration_ms(pcm.silence(640), 16000) == 20.0
    assert pcm.rms_dbfs(pcm.silence(640)) == float("-inf")


def test_comfort_noise_level_and_reproducibility() -> None:
    frames = pcm.comfort_noise_frames(16000, 20, 10, level_dbfs=-60.0, seed=7)
    assert len(frames) == 10 and all(len(f) == 640 for f in frames)
    assert len(set(frames)) == 10  # distinct frames, no audible loop of one
    level = pcm.rms_dbfs(b"".join(frames))
    assert -62.0 < level < -58.0
    assert frames == pcm.comfort_noise_frames(16000, 20, 10, level_dbfs=-60.0, seed=7)
    assert frames != pcm.comfort_noise_frames(16000, 20, 10, level_dbfs=-60.0, seed=8)


@pytest.mark.parametrize(("src", "dst"), [(22050, 16000), (16000, 8000), (16000, 24000)])
def test_resample_length_and_pitch(src: int, dst: int) -> None:
    t = np.arange(src) / src  # one second
    tone = (np.sin(2 * np.pi * 440.0 * t) * 10000).astype("<i2").tobytes()
    out = pcm.resample(tone, src, dst)
    samples = np.frombuffer(out, dtype="<i2").astype(np.float64)
    assert abs(samples.size - dst) <= 1
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * dst / samples.size
    assert abs(peak_hz - 440.0) < 2.0
    # Level kept: a resampler that drops samples or clips would change it.
    assert abs(pcm.rms_dbfs(out) - pcm.rms_dbfs(tone)) < 0.5


def test_resample_never_takes_soxr_dithered_integer_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """soxr adds random TPDF dither when it writes 16-bit output, so the same input came out
    ±1 LSB differently from call to call (a test failed one run in ten, and a cache names
    audio by its content hash): resample hands soxr floats and rounds itself."""
    seen: list[np.dtype[Any]] = []
    real = pcm.soxr.resample

    def spy(x: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(np.asarray(x).dtype)
        return real(x, *args, **kwargs)

    monkeypatch.setattr(pcm.soxr, "resample", spy)
    tone = (np.sin(2 * np.pi * 300 * np.arange(1600) / 16000) * 8000).astype("<i2").tobytes()
    assert len({pcm.resample(tone, 16000, 8000) for _ in range(20)}) == 1
    assert seen and all(dtype.kind == "f" for dtype in seen)
    square = (np.sign(np.sin(2 * np.pi * 100 * np.arange(1600) / 16000)) * 32767).astype("<i2")
    out = np.frombuffer(pcm.resample(square.tobytes(), 16000, 24000), dtype="<i2")
    assert out.max() == 32767 and out.min() == -32768  # overshoot clipped, not wrapped


def test_resample_same_rate_is_identity() -> None:
    data = b"\x01\x00" * 100
    assert pcm.resample(data, 16000, 16000) is data
