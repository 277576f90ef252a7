"""Reply audio of the agent simulator, pre-encoded once per process (core).

The simulator's per-frame work must be a lookup: :class:`ReplyAudio` holds, for each supported
sample rate, the reply cut into 20 ms frames and already encoded as UTF-8 ACS ``AudioData``
messages in the configured casing. Sessions only say "send frame k".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from loadtest.agent_sim.config import FRAME_MS
from loadtest.audio.pcm import SUPPORTED_RATES, frame_size, resample, split_frames
from loadtest.errors import ConfigError
from loadtest.protocols.acs import Casing, encode_agent_audio, encode_stop

__all__ = ["ReplyAudio", "fit_duration", "tone_pcm"]

_FADE_MS = 5


def tone_pcm(
    sample_rate: int, duration_ms: int, *, frequency_hz: float = 450.0, level_dbfs: float = -12.0
) -> bytes:
    """A sine tone of ``duration_ms`` at ``level_dbfs`` peak, with 5 ms fades (no clicks)."""
    samples = sample_rate * duration_ms // 1000
    t = np.arange(samples) / sample_rate
    wave = np.sin(2.0 * np.pi * frequency_hz * t) * 32767.0 * 10.0 ** (level_dbfs / 20.0)
    fade = min(samples // 2, sample_rate * _FADE_MS // 1000)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return np.asarray(np.rint(wave), dtype="<i2").tobytes()


def fit_duration(pcm: bytes, sample_rate: int, duration_ms: int) -> bytes:
    """``pcm`` cut to ``duration_ms``, or padded with digital silence up to it."""
    size = frame_size(sample_rate, duration_ms)
    return pcm[:size] if len(pcm) >= size else pcm + bytes(size - len(pcm))


@dataclass(frozen=True, slots=True)
class ReplyAudio:
    """Pre-encoded reply frames per sample rate, plus the encoded StopAudio.

    ``frames[rate][k]`` is the UTF-8 text of agent ``AudioData`` frame ``k`` at ``rate`` Hz;
    send it as a text frame without re-encoding.
    """

    frames: Mapping[int, tuple[bytes, ...]]
    stop: bytes
    casing: Casing

    @classmethod
    def build(
        cls,
        duration_ms: int,
        casing: Casing,
        source: Callable[[int], bytes] | None = None,
        *,
        source_rate: int = 16000,
    ) -> ReplyAudio:
        """Encode ``duration_ms`` of reply audio for every supported rate.

        ``source(rate)`` returns PCM16 of the reply at ``source_rate`` (called once); the
        default is a tone. Other rates are resampled from it. Shorter audio is padded with
        silence, longer audio cut.
        """
        if duration_ms < FRAME_MS:
            raise ConfigError(f"reply audio of {duration_ms} ms is shorter than one frame")
        pcm = source(source_rate) if source is not None else tone_pcm(source_rate, duration_ms)
        frames: dict[int, tuple[bytes, ...]] = {}
        for rate in SUPPORTED_RATES:
            at_rate = pcm if rate == source_rate else resample(pcm, source_rate, rate)
            fitted = fit_duration(at_rate, rate, duration_ms)
            frames[rate] = tuple(
                encode_agent_audio(frame, casing).encode()
                for frame in split_frames(fitted, rate, FRAME_MS)
            )
        return cls(frames=frames, stop=encode_stop(casing).encode(), casing=casing)
