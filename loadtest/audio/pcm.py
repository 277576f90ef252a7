"""PCM16 helpers: validation, 20 ms framing, silence, comfort noise, resampling and G.711 µ-law.

All audio in voice-loadtest is signed 16-bit little-endian PCM, mono. Sample rates are in Hz,
durations in milliseconds. These functions are pure: no files, no sockets, no clocks; the one
source of randomness (comfort noise) is a seed passed in. µ-law (Twilio's ``audio/x-mulaw``)
is two table lookups in numpy (``audioop`` is deprecated and gone in Python 3.13).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import soxr

from loadtest.errors import AudioFormatError

__all__ = [
    "CHANNELS",
    "SAMPLE_WIDTH",
    "SUPPORTED_RATES",
    "check_pcm",
    "check_rate",
    "comfort_noise_frames",
    "duration_ms",
    "frame_size",
    "mulaw_decode",
    "mulaw_encode",
    "pad_to_frame",
    "resample",
    "rms_dbfs",
    "silence",
    "split_frames",
]

SAMPLE_WIDTH = 2
"""Bytes per sample (16-bit)."""
CHANNELS = 1
SUPPORTED_RATES = (8000, 16000, 24000)
"""Sample rates the cache, the callers and the agent simulator accept, in Hz."""


def check_rate(sample_rate: int) -> int:
    """Return ``sample_rate`` if supported, else raise :class:`AudioFormatError`."""
    if sample_rate not in SUPPORTED_RATES:
        allowed = ", ".join(str(r) for r in SUPPORTED_RATES)
        raise AudioFormatError(f"unsupported sample rate {sample_rate} Hz (allowed: {allowed})")
    return sample_rate


def check_pcm(data: bytes, *, what: str = "audio") -> bytes:
    """Return ``data`` if it is non-empty whole PCM16 samples, else raise AudioFormatError.

    ``what`` names the source (usually a file name) in the message.
    """
    if not data:
        raise AudioFormatError(f"{what}: empty PCM (0 bytes); regenerate it with generate-audio")
    if len(data) % SAMPLE_WIDTH:
        raise AudioFormatError(
            f"{what}: odd byte length {len(data)} is not 16-bit PCM; the file is truncated or "
            "not raw PCM16"
        )
    return data


def frame_size(sample_rate: int, frame_ms: int) -> int:
    """Bytes in one frame of ``frame_ms`` milliseconds at ``sample_rate`` Hz."""
    samples, rest = divmod(sample_rate * frame_ms, 1000)
    if rest or samples <= 0:
        raise AudioFormatError(
            f"a {frame_ms} ms frame at {sample_rate} Hz is not a whole number of samples"
        )
    return samples * SAMPLE_WIDTH


def duration_ms(data: bytes, sample_rate: int) -> float:
    """Length of ``data`` in milliseconds."""
    return len(data) / SAMPLE_WIDTH * 1000.0 / sample_rate


def silence(n_bytes: int) -> bytes:
    """``n_bytes`` of digital silence."""
    return bytes(n_bytes)


def pad_to_frame(data: bytes, sample_rate: int, frame_ms: int) -> bytes:
    """Pad ``data`` with digital silence to a whole number of frames."""
    size = frame_size(sample_rate, frame_ms)
    rest = len(data) % size
    return data if rest == 0 else data + silence(size - rest)


def split_frames(data: bytes, sample_rate: int, frame_ms: int) -> list[bytes]:
    """Split ``data`` into frames of ``frame_ms``; the last one is padded with silence."""
    size = frame_size(sample_rate, frame_ms)
    padded = pad_to_frame(data, sample_rate, frame_ms)
    return [padded[i : i + size] for i in range(0, len(padded), size)]


def rms_dbfs(data: bytes) -> float:
    """Root-mean-square level of PCM16 ``data`` in dBFS (``-inf`` for digital silence).

    Runs for every inbound frame in the agent simulator's VAD, so it is one dot product.
    """
    samples = np.frombuffer(data, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return float("-inf")
    energy = float(samples @ samples)
    if energy == 0.0:
        return float("-inf")
    return 10.0 * math.log10(energy / samples.size / (32768.0 * 32768.0))


def comfort_noise_frames(
    sample_rate: int, frame_ms: int, count: int, *, level_dbfs: float = -60.0, seed: int = 0
) -> list[bytes]:
    """``count`` distinct frames of low white noise at about ``level_dbfs`` (RMS).

    Generated once with numpy and meant to be reused: per-sample Python loops cost ~0.6 ms per
    100 ms of audio, enough to push a caller off real time.
    """
    samples = frame_size(sample_rate, frame_ms) // SAMPLE_WIDTH
    rng = np.random.default_rng(seed)
    amplitude = 32768.0 * 10.0 ** (level_dbfs / 20.0)
    noise = rng.normal(0.0, amplitude, size=(count, samples))
    pcm = np.clip(np.rint(noise), -32768, 32767).astype("<i2")
    return [row.tobytes() for row in pcm]


def resample(data: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample PCM16 from ``from_rate`` to ``to_rate`` Hz with soxr (high quality).

    The output has ``round(len * to_rate / from_rate)`` samples: no samples are dropped or
    invented beyond what the rate change implies. It is deterministic: soxr works in floats
    here and the result is rounded to PCM16 without dither (soxr's own 16-bit output adds
    random dither, so the same input came out ±1 LSB differently from call to call — and a
    cache identifies audio by its content hash).
    """
    check_pcm(data)
    if from_rate == to_rate:
        return data
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32)
    out = np.asarray(soxr.resample(samples, from_rate, to_rate, quality="HQ"))
    rounded: bytes = np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()
    return rounded


def _mulaw_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    """Encode table (every int16 value, indexed by its uint16 bit pattern) and decode table
    (every µ-law byte), computed the way ITU-T G.191's reference ``g711.c`` does it."""
    linear = np.arange(65536, dtype=np.int64).astype(np.uint16).view(np.int16).astype(np.int64)
    negative = linear < 0
    # 16-bit → 14-bit magnitude plus the bias of 33; one's complement for negatives, so the
    # coding is symmetric (-1..-4 become "negative zero", 0x7F).
    magnitude = np.minimum(np.where(negative, ~linear, linear) >> 2, 0x1FFF - 33) + 33
    segment = np.ones_like(magnitude)
    shifted = magnitude >> 6
    while shifted.any():
        segment += shifted != 0
        shifted >>= 1
    low = 0x0F - ((magnitude >> segment) & 0x0F)
    code = ((0x08 - segment) << 4) | low
    code = np.where(negative, code, code | 0x80)
    encode = code.astype(np.uint8)

    byte = np.arange(256, dtype=np.int64)
    inverted = ~byte & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    value = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    decode = np.where(byte < 0x80, -value, value).astype("<i2")
    return encode, decode


_MULAW_ENCODE, _MULAW_DECODE = _mulaw_tables()


def mulaw_encode(pcm: bytes) -> bytes:
    """G.711 µ-law bytes (one per sample) for PCM16 ``pcm`` (ITU-T G.711 / G.191 rounding).

    ``mulaw_encode(b"\\x00\\x00") == b"\\xff"``; full scale ``+32767`` → ``0x80``, ``-32768`` →
    ``0x00``. Raises :class:`AudioFormatError` for an odd byte length.
    """
    if len(pcm) % SAMPLE_WIDTH:
        raise AudioFormatError(f"µ-law encode: odd byte length {len(pcm)} is not 16-bit PCM")
    samples = np.frombuffer(pcm, dtype="<u2")
    return bytes(_MULAW_ENCODE[samples].tobytes())


def mulaw_decode(data: bytes) -> bytes:
    """PCM16 (two bytes per sample) for G.711 µ-law bytes ``data``.

    Decoded values are the centres of the µ-law steps: ``0xFF``/``0x7F`` → 0, ``0x80`` →
    32124, ``0x00`` → -32124. Decoding then encoding gives back the same bytes, except that
    ``0x7F`` (negative zero) comes back as ``0xFF``.
    """
    codes = np.frombuffer(data, dtype=np.uint8)
    return _MULAW_DECODE[codes].tobytes()
