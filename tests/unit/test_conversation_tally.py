"""The tally: what a call's measurements mean for the run's numbers, on a fake clock.

A real :class:`Conversation` is driven by the discrete-event edge of the engine's tests (no
sleeping, exact nanosecond stamps); its events go through :class:`Tally` into a real
:class:`VoiceStats`, and the Locust samples it returns are checked as the edge fires them.
"""

from __future__ import annotations

import pytest

from loadtest.conversation import Conversation, Failure
from loadtest.conversation.measure import Counters
from loadtest.conversation.tally import COUNTED, RequestSample, Tally
from loadtest.metrics.summary import build_summary
from loadtest.metrics.voice_stats import COUNTERS, VoiceStats
from tests.unit.test_conversation_engine import (
    MS,
    T0,
    Call,
    answer_after_eos,
    barge_call,
    config,
    make_plan,
    speech_of,
)


def _run(call: Call, until_ns: int, tally: Tally, *, benign: bool = False) -> list[RequestSample]:
    call.run_until(until_ns)
    return tally.events(call.events, benign_close=benign)


def test_an_answered_turn_is_a_ttfb_a_turn_and_a_good_turn_of_its_scenario() -> None:
    stats = VoiceStats()
    call = Call(Conversation(make_plan(False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=640, frames=10)
    samples = _run(call, T0 + 5_000 * MS, Tally(stats))
    assert [(s.name, s.error) for s in samples] == [("ttfb", None), ("turn", None)]
    assert samples[0].value_ms == 640.0
    assert stats.histograms["ttfb_ms"].count == 1 and stats.histograms["ttfb_ms"].max == 640.0
    assert stats.by_scenario[("ttfb_ms", "demo")].count == 1
    assert stats.total("turns") == stats.total("turns_ok") == 1
    assert stats.per_scenario("turns") == stats.per_scenario("turns_ok") == {"demo": 1}
    assert stats.histograms["turn_ms"].count == 1
    # ten 20 ms frames arriving back to back: nine gaps of 20 ms
    assert stats.histograms["agent_gap_ms"].count == 9
    assert stats.errors == {}


def test_an_unanswered_turn_fails_with_its_error_name_and_no_latency() -> None:
    stats = VoiceStats()
    call = Call(Conversation(make_plan(False), config(first_byte_timeout_ms=2_000))).start()
    samples = _run(call, T0 + 10_000 * MS, Tally(stats))
    # One failure, one count: the turn carries the cause; the TTFB row is no second failure.
    assert [(s.name, s.error) for s in samples] == [("turn", "ttfb_timeout")]
    assert stats.total("turns") == 1 and stats.total("turns_ok") == 0
    assert stats.per_scenario("turns") == {"demo": 1} and stats.per_scenario("turns_ok") == {}
    assert stats.histograms["ttfb_ms"].count == 0 and stats.histograms["turn_ms"].count == 0
    assert stats.errors == {"ttfb_timeout": 1}
    summary = build_summary(stats)
    assert summary["rates"]["turn_success"] == 0.0
    assert summary["counts"]["failures"] == {"ttfb_timeout": 1}


def test_a_barge_in_is_counted_timed_and_its_talk_over_heard() -> None:
    stats = VoiceStats()
    call, _ = barge_call()
    call.on_sent(speech_of(1), lambda f, t: call.stop_agent(t + 230 * MS))
    samples = _run(call, T0 + 30_000 * MS, Tally(stats))
    barges = [s for s in samples if s.name == "barge_in"]
    assert [(s.value_ms, s.error) for s in barges] == [(230.0, None)]
    assert stats.total("barge_attempts") == stats.total("barge_ok") == 1
    assert stats.histograms["barge_in_ms"].max == 230.0
    assert stats.histograms["talk_over_ms"].max == 230.0
    assert build_summary(stats)["rates"]["barge_in_success"] == 1.0


def test_a_turn_cut_by_a_benign_close_is_counted_not_failed_when_asked() -> None:
    for ignore, benign, failed in ((False, True, 1), (True, True, 0), (True, False, 1)):
        stats = VoiceStats()
        call = Call(Conversation(make_plan(False, False), config())).start()
        call.run_until(T0 + 1_200 * MS)  # after EOS, no answer yet
        call.conv.closed(call.now_ns, 1000, "")
        tally = Tally(stats, ignore_benign_close=ignore)
        samples = tally.events(call.conv.events(), benign_close=benign)
        assert [s.error for s in samples] == [Failure.CLOSED_MID_TURN.value] * failed
        assert stats.errors == ({"closed_mid_turn": 1} if failed else {})
        assert stats.total("closes_ignored") == 1 - failed
        assert stats.total("turns") == failed
        # Failed by a benign close the user did not ask to ignore: the run says why.
        assert stats.total("closes_benign_failed") == int(benign and not ignore)


def test_per_turn_stats_add_a_named_row_per_turn() -> None:
    stats = VoiceStats()
    call = Call(Conversation(make_plan(False, False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=500, frames=5)
    answer_after_eos(call, 1, ttfb_ms=700, frames=5)
    samples = _run(call, T0 + 20_000 * MS, Tally(stats, per_turn_stats=True))
    names = [s.name for s in samples]
    assert names == ["ttfb", "ttfb/demo/1", "turn", "turn/demo/1",
                     "ttfb", "ttfb/demo/2", "turn", "turn/demo/2"]  # fmt: skip
    assert [s.value_ms for s in samples if s.name.startswith("ttfb/")] == [500.0, 700.0]


def test_the_connect_sample_comes_from_the_upgrade_not_the_conversation() -> None:
    stats = VoiceStats()
    tally = Tally(stats)
    tally.call_placed()
    tally.connect_attempt(retry=False)
    failed = tally.connect_failed("connect_refused", "connection refused", 3.0, at_s=1_000.0)
    tally.connect_attempt(retry=True)
    ok = tally.connected(12.5)
    assert failed == RequestSample("connect", 3.0, "connect_refused", "connection refused")
    assert ok == RequestSample("connect", 12.5)
    assert (stats.total("calls"), stats.total("connect_attempts")) == (1, 2)
    assert (stats.total("reconnects"), stats.total("calls_connected")) == (1, 1)
    assert stats.histograms["connect_ms"].max == 12.5 and stats.errors == {"connect_refused": 1}
    conv = Conversation(make_plan(False), config())
    conv.start(T0, connect_started_ns=T0 - 42 * MS)
    assert tally.events(conv.events(), benign_close=False) == []  # not counted twice
    summary = build_summary(stats)
    assert summary["rates"]["connection_success"] == 0.5
    assert summary["outage"] is not None and summary["outage"]["failed_attempts"] == 1


def test_the_stream_gives_the_realtime_factor() -> None:
    stats = VoiceStats()
    # 100 frames of 20 ms, the first due at 0, the last sent at 2,010 ms (10 ms behind)
    Tally(stats).stream(frames=100, chunk_ms=20, first_due_ns=0, last_sent_ns=1_990 * MS)
    assert stats.total("frames_sent") == 100
    assert stats.total("stream_due_us") == 2_000_000
    assert stats.total("stream_actual_us") == 2_010_000
    assert build_summary(stats)["harness"]["realtime_factor"] == round(2000 / 2010, 4)
    Tally(stats).stream(frames=0, chunk_ms=20, first_due_ns=0, last_sent_ns=0)
    assert stats.total("frames_sent") == 100  # a call that sent nothing adds nothing


def test_counted_conversation_fields_become_declared_counters() -> None:
    assert set(COUNTED) <= set(COUNTERS)
    stats = VoiceStats()
    Tally(stats).counters(Counters(inbound_malformed=2, barge_skipped=1, inbound_audio=50))
    assert stats.total("inbound_malformed") == 2 and stats.total("barge_skipped") == 1
    assert stats.total("stray_audio_frames") == 0
    with pytest.raises(KeyError):
        stats.total("inbound_audio")  # counted by the engine, not a run counter


def test_answers_after_the_run_time_count_everywhere_and_are_also_counted_as_late() -> None:
    stats = VoiceStats()
    call = Call(Conversation(make_plan(False), config())).start()
    answer_after_eos(call, 0, ttfb_ms=640, frames=10)
    call.run_until(T0 + 5_000 * MS)
    ttfb_at = next(e.at_ns for e in call.events if getattr(e, "name", "") == "ttfb")
    tally = Tally(stats)
    samples = tally.events(call.events, benign_close=False, run_ended_ns=ttfb_at)
    assert [s.name for s in samples] == ["ttfb", "turn"]  # in Locust's rows as ever
    assert stats.histograms["ttfb_ms"].count == 1 and stats.total("after_run_time") == 1
    early = VoiceStats()
    Tally(early).events(call.events, benign_close=False, run_ended_ns=ttfb_at + 1)
    assert early.total("after_run_time") == 0  # decided before the run ended


def test_a_call_ends_counted_and_a_protocol_error_is_an_anomaly() -> None:
    stats = VoiceStats()
    tally = Tally(stats)
    tally.call_placed()
    tally.protocol_error()
    tally.counters(Counters(stop_while_silent=3, stray_stops=1, empty_audio=2))
    tally.call_ended()
    summary = build_summary(stats)
    assert stats.total("calls") == stats.total("calls_ended") == 1
    assert summary["counts"]["protocol_errors"] == 1
    assert summary["counts"]["stop_while_silent"] == 3
    assert (summary["counts"]["stray_stops"], summary["counts"]["empty_audio"]) == (1, 2)
