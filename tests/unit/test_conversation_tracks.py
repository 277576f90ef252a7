"""BargeTracker on its own: every way a barge-in can end, with exact instants."""

from __future__ import annotations

from loadtest.conversation import BargeOutcome
from loadtest.conversation.tracks import AudioTrack, BargeTracker, TalkOverTrack

MS = 1_000_000
B = 5_000 * MS  # send instant of the first barge speech frame
W = 2_000 * MS  # window
Q = 400 * MS  # quiet gap


def tracker(last_audio_ns: int = B - 10 * MS, playback_end_ns: int = B + 10 * MS) -> BargeTracker:
    barge = BargeTracker(
        interrupted_turn=2,
        started_ns=B - 100 * MS,
        last_audio_ns=last_audio_ns,
        playback_end_ns=playback_end_ns,
        window_ns=W,
        quiet_ns=Q,
    )
    assert barge.owns
    barge.speech_sent(B)
    return barge


def realtime(barge: BargeTracker, first_ns: int, last_ns: int) -> None:
    """Real-time agent audio: a 20 ms frame every 20 ms, the buffer one frame ahead."""
    t = first_ns
    while t <= last_ns:
        assert barge.on_time(t) is None
        barge.on_audio(t, t + 20 * MS)
        t += 20 * MS


def test_stop_signal() -> None:
    barge = tracker()
    realtime(barge, B, B + 240 * MS)
    report = barge.on_stop(B + 250 * MS)
    assert report is not None and report.outcome is BargeOutcome.STOPPED
    assert report.latency_ms == 250.0 and report.decided_ns == B + 250 * MS
    assert report.audible_talk_over_ms == 250.0  # flushed at the stop
    assert report.stop_arrival_ns == B + 250 * MS and report.interrupted_turn == 2
    assert not barge.owns  # the interrupted answer is over: audio from now on is new
    assert barge.on_time(B + 240 * MS + Q) is None
    assert barge.report == report


def test_quiet_gap_is_not_counted() -> None:
    barge = tracker()
    realtime(barge, B, B + 300 * MS)
    assert barge.on_time(B + 300 * MS + Q - 1) is None
    report = barge.on_time(B + 300 * MS + Q)
    assert report is not None and report.outcome is BargeOutcome.QUIET
    assert report.latency_ms == 300.0  # the last frame's arrival − B, never + the gap
    assert report.decided_ns == B + 300 * MS + Q
    assert report.audible_talk_over_ms == 320.0


def test_audio_past_the_window_is_ignored() -> None:
    barge = tracker()
    realtime(barge, B, B + W)
    assert barge.report is None
    report = barge.on_audio(B + W + 20 * MS, B + W + 40 * MS)
    assert report is not None and report.outcome is BargeOutcome.IGNORED
    assert report.latency_ms is None and report.decided_ns == B + W + 20 * MS
    assert not report.ok


def test_nothing_after_the_barge_plays_out() -> None:
    # the agent had sent everything (a burst) before the caller barged in; no stop signal
    barge = tracker(last_audio_ns=B - 900 * MS, playback_end_ns=B + 700 * MS)
    assert barge.on_time(B + 699 * MS) is None
    report = barge.on_time(B + 700 * MS)
    assert report is not None and report.outcome is BargeOutcome.PLAYED_OUT
    assert report.latency_ms is None and report.ok
    assert report.audible_talk_over_ms == 700.0


def test_still_audible_after_the_window_is_ignored() -> None:
    barge = tracker(last_audio_ns=B - 900 * MS, playback_end_ns=B + W + 1_000 * MS)
    assert barge.on_time(B + W - 1) is None
    report = barge.on_time(B + W)
    assert report is not None and report.outcome is BargeOutcome.IGNORED
    assert report.decided_ns == B + W and report.audible_talk_over_ms == 3000.0


def test_burst_then_stop_flushes() -> None:
    barge = tracker(last_audio_ns=B - 900 * MS, playback_end_ns=B + 4_000 * MS)
    report = barge.on_stop(B + 120 * MS)
    assert report is not None and report.outcome is BargeOutcome.STOPPED
    assert report.latency_ms == 120.0 and report.audible_talk_over_ms == 120.0


def test_a_stop_before_the_barge_speech_is_not_a_reaction() -> None:
    barge = BargeTracker(
        interrupted_turn=None,
        started_ns=B - 100 * MS,
        last_audio_ns=B - 110 * MS,
        playback_end_ns=B + 3_000 * MS,
        window_ns=W,
        quiet_ns=Q,
    )
    assert barge.on_stop(B - 50 * MS) is None  # before B: flushes, decides nothing
    barge.speech_sent(B)
    report = barge.on_time(B - 110 * MS + Q)
    assert report is not None and report.outcome is BargeOutcome.PLAYED_OUT
    assert report.audible_talk_over_ms == 0.0 and report.interrupted_turn is None


def test_finish_without_an_outcome() -> None:
    barge = tracker()
    realtime(barge, B, B + 100 * MS)
    closed = barge.finish(B + 110 * MS, closed=True)
    assert closed.outcome is BargeOutcome.CLOSED and closed.audible_talk_over_ms == 110.0
    assert barge.finish(B + 200 * MS, closed=False) is closed  # decided once
    other = tracker()
    realtime(other, B, B + 100 * MS)
    assert other.finish(B + 110 * MS, closed=False).outcome is BargeOutcome.IGNORED


def test_audio_and_talk_over_tracks() -> None:
    track = AudioTrack(1_000 * MS, 20 * MS)
    track.add(1_020 * MS, 20 * MS)
    track.add(1_100 * MS, 20 * MS)
    stats = track.stats()
    assert stats.frames == 3 and stats.audio_ms == 60.0
    assert stats.gaps_ms == (20.0, 80.0) and stats.max_gap_ms == 80.0
    assert stats.arrival_span_ms == 100.0
    talk = TalkOverTrack()
    assert talk.snapshot().frames == 0 and talk.snapshot().first_arrival_ns is None
    talk.add(7 * MS, 20 * MS)
    talk.add(9 * MS, 20 * MS)
    assert talk.snapshot().audio_ms == 40.0 and talk.snapshot().first_arrival_ns == 7 * MS
