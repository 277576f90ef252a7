"""Reply audio of the agent simulator, pre-encoded once per process (core).

The simulator's per-frame work must be a lookup: :class:`ReplyAudio` holds, for each sample
rate the protocol can stream, the reply cut into 20 ms frames and already encoded by the
codec (UTF-8 ACS ``AudioData`` messages in the configured casing, Twilio µ-law, raw PCM16).
Sessions only say "send frame k".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from loadtest.agent_sim.codecs import AgentCodec
from loadtest.agent_sim.config import FRAME_MS
from loadtest.audio.pcm import frame_size, resample, split_frames
from loadtest.errors import ConfigError

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
    """Pre-encoded reply frames per sample rate, and the codec that encoded them.

    ``frames[rate][k]`` is frame ``k`` at ``rate`` Hz as ``codec.encode_audio`` made it (for
    ACS the UTF-8 text of an ``AudioData`` message); ``codec.bind_audio`` turns a rate's
    frames into one stream's messages.
    """

    frames: Mapping[int, tuple[bytes, ...]]
    codec: AgentCodec

    @classmethod
    def build(
        cls,
        duration_ms: int,
        codec: AgentCodec,
        source: Callable[[int], bytes] | None = None,
        *,
        source_rate: int = 16000,
    ) -> ReplyAudio:
        """Encode ``duration_ms`` of reply audio for every rate in ``codec.reply_rates``.

        ``source(rate)`` returns PCM16 of the reply at ``source_rate`` (called once); the
        default is a tone. Other rates are resampled from it. Shorter audio is padded with
        silence, longer audio cut.
        """
        if duration_ms < FRAME_MS:
            raise ConfigError(f"reply audio of {duration_ms} ms is shorter than one frame")
        pcm = source(source_rate) if source is not None else tone_pcm(source_rate, duration_ms)
        frames: dict[int, tuple[bytes, ...]] = {}
        for rate in codec.reply_rates:
            at_rate = pcm if rate == source_rate else resample(pcm, source_rate, rate)
            fitted = fit_duration(at_rate, rate, duration_ms)
            frames[rate] = tuple(
                codec.encode_audio(frame, rate) for frame in split_frames(fitted, rate, FRAME_MS)
            )
        return cls(frames=frames, codec=codec)
