"""The caller's playback buffer: what it hears, not when the bytes arrived."""

from __future__ import annotations

from loadtest.conversation import PlaybackBuffer, audio_duration_ns

MS = 1_000_000


def test_durations_from_pcm16_bytes() -> None:
    assert audio_duration_ns(640, 16_000) == 20 * MS
    assert audio_duration_ns(320, 8_000) == 20 * MS
    assert audio_duration_ns(960, 24_000) == 20 * MS
    assert audio_duration_ns(0, 16_000) == 0


def test_real_time_audio_plays_as_it_arrives() -> None:
    buffer = PlaybackBuffer(16_000, start_ns=0)
    for i in range(10):
        assert buffer.add(1_000 * MS + i * 20 * MS, 640) == 1_000 * MS + (i + 1) * 20 * MS
    assert buffer.end_ns == 1_200 * MS
    assert buffer.playing(1_199 * MS) and not buffer.playing(1_200 * MS)


def test_burst_audio_plays_for_its_duration_not_its_arrival_span() -> None:
    buffer = PlaybackBuffer(16_000, start_ns=0)
    for i in range(250):  # 5 s of audio in 250 ms
        buffer.add(1_000 * MS + i * MS, 640)
    assert buffer.end_ns == 6_000 * MS
    assert buffer.remaining_ns(1_250 * MS) == 4_750 * MS
    # a gap: new audio starts when it arrives, not where the old ended
    assert buffer.add(9_000 * MS, 640) == 9_020 * MS


def test_stop_flushes_what_was_not_heard() -> None:
    buffer = PlaybackBuffer(16_000, start_ns=0)
    for i in range(100):
        buffer.add(i * MS, 640)
    assert buffer.flush(500 * MS) == 1_500 * MS
    assert buffer.end_ns == 500 * MS
    assert buffer.flush(800 * MS) == 0 and buffer.end_ns == 500 * MS  # nothing left to cut
    assert buffer.remaining_ns(900 * MS) == 0
