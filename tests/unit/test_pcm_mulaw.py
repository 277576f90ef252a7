"""G.711 µ-law: the decoder table, the encoder's decision levels, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.audio.pcm import mulaw_decode, mulaw_encode
from loadtest.errors import AudioFormatError


def pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def samples(data: bytes) -> list[int]:
    return [int(v) for v in np.frombuffer(data, dtype="<i2")]


def g711_output(code: int) -> int:
    """ITU-T G.711 table 2 (µ-law): decoder output for ``code``, scaled from 14 to 16 bits.

    The transmitted byte is the inverted (sign, segment, step) triple; the output is the
    middle of step ``q`` of segment ``s``: ``(2q + 33) · 2^s − 33``.
    """
    inverted = ~code & 0xFF
    segment, step = (inverted >> 4) & 0x07, inverted & 0x0F
    magnitude = ((2 * step + 33) << segment) - 33
    return 4 * (magnitude if code & 0x80 else -magnitude)


def test_decoder_matches_the_g711_table_for_every_code() -> None:
    decoded = samples(mulaw_decode(bytes(range(256))))
    assert decoded == [g711_output(code) for code in range(256)]


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0x00, -32124),  # negative full scale
        (0x0F, -16764),
        (0x10, -15996),
        (0x70, -120),
        (0x7E, -8),
        (0x7F, 0),  # "negative zero"
        (0x80, 32124),  # positive full scale
        (0xE0, 372),
        (0xEF, 132),
        (0xF0, 120),
        (0xFE, 8),
        (0xFF, 0),
    ],
)
def test_known_decoder_values(code: int, value: int) -> None:
    assert samples(mulaw_decode(bytes([code]))) == [value]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, 0xFF),
        (3, 0xFF),  # below the first decision level (1 in 14-bit units)
        (4, 0xFE),
        (120, 0xF0),  # top of segment 0 …
        (124, 0xEF),  # … the decision level 31 (14-bit) opens segment 1
        (32767, 0x80),
        (-1, 0x7F),  # one's complement, as G.191: -1..-4 are negative zero
        (-5, 0x7E),
        (-32768, 0x00),
    ],
)
def test_known_encoder_values(value: int, code: int) -> None:
    assert mulaw_encode(pcm(value)) == bytes([code])


def test_round_trip_of_every_code() -> None:
    codes = bytes(range(256))
    again = mulaw_encode(mulaw_decode(codes))
    expected = bytes(0xFF if c == 0x7F else c for c in codes)  # negative zero decodes to 0
    assert again == expected


def test_every_sample_within_half_a_step() -> None:
    values = np.arange(-32635, 32636, dtype=np.int64)
    codes = np.frombuffer(mulaw_encode(values.astype("<i2").tobytes()), dtype=np.uint8)
    decoded = np.frombuffer(mulaw_decode(codes.tobytes()), dtype="<i2").astype(np.int64)
    segment = ((~codes.astype(np.int64)) >> 4) & 0x07
    half_step = 4 << segment  # a step is 2^(segment+1) in 14-bit units
    assert np.all(np.abs(decoded - values) <= half_step)
    assert np.all(np.diff(decoded) >= 0)  # monotonic


def test_sizes_and_errors() -> None:
    assert mulaw_encode(b"") == b"" and mulaw_decode(b"") == b""
    assert len(mulaw_encode(bytes(320))) == 160  # 20 ms at 8 kHz
    assert mulaw_decode(b"\xff" * 160) == bytes(320)
    with pytest.raises(AudioFormatError, match="odd byte length 3"):
        mulaw_encode(b"\x00\x01\x02")
