"""Synthetic test signals with known speech edges (shared by unit and integration tests)."""

from __future__ import annotations

import numpy as np


def harmonic_burst(sample_rate: int, duration_ms: int, *, f0: float = 150.0) -> np.ndarray:
    """A voiced-like harmonic tone (f0 and 20 harmonics), peak 8000."""
    t = np.arange(sample_rate * duration_ms // 1000) / sample_rate
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 21))
    return np.asarray(x / np.max(np.abs(x)) * 8000.0)


def bursts_in_noise(
    sample_rate: int,
    segments: list[tuple[int, int]],
    total_ms: int,
    *,
    noise_rms: float = 30.0,
    seed: int = 1,
) -> bytes:
    """PCM16 of ``total_ms`` low noise with harmonic bursts at ``[(start_ms, end_ms), ...]``."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0.0, noise_rms, sample_rate * total_ms // 1000)
    for start_ms, end_ms in segments:
        first = sample_rate * start_ms // 1000
        burst = harmonic_burst(sample_rate, end_ms - start_ms)
        signal[first : first + burst.size] += burst
    return np.clip(np.rint(signal), -32768, 32767).astype("<i2").tobytes()


class ToneEngine:
    """An in-memory TTS stand-in: a harmonic burst per word, with silence around it.

    Lead and tail silence are deliberately not the generator's margins, so trimming and
    padding are exercised. ``calls`` counts syntheses (to prove reuse).
    """

    name = "tone"
    default_voice = "tone-a"

    def __init__(self, lead_ms: int = 500, tail_ms: int = 700, ms_per_word: int = 200) -> None:
        self.lead_ms, self.tail_ms, self.ms_per_word = lead_ms, tail_ms, ms_per_word
        self.calls = 0

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        rate: float = 1.0,
        style: str | None = None,
        sample_rate: int = 16000,
    ) -> bytes:
        self.calls += 1
        speech_ms = int(len(text.split()) * self.ms_per_word / rate) // 20 * 20
        total = self.lead_ms + speech_ms + self.tail_ms
        return bursts_in_noise(sample_rate, [(self.lead_ms, self.lead_ms + speech_ms)], total)
