"""Per-process voice stats: declared counters (a typo fails loudly on either side), counters
kept per scenario, and exact merging of worker deltas."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from loadtest.metrics.exposition import COUNTER_METRICS, OUTCOME_METRICS, Snapshot, VoiceCollector
from loadtest.metrics.voice_stats import COUNTERS, VoiceStats


def test_an_undeclared_counter_fails_loudly_when_counted_or_read() -> None:
    stats = VoiceStats()
    with pytest.raises(KeyError, match="'turn' is not a declared counter"):
        stats.count("turn")
    with pytest.raises(KeyError, match="'turns_okay' is not a declared counter"):
        stats.total("turns_okay")
    with pytest.raises(KeyError, match="not kept per scenario"):
        stats.per_scenario("calls")
    assert stats.counters == {}


def test_scenario_counters_keep_a_total_and_a_count_per_scenario() -> None:
    stats = VoiceStats()
    stats.count("turns", scenario="a")
    stats.count("turns", 2, scenario="b")
    stats.count("turns")  # no scenario: the total only
    stats.count("calls", scenario="a")  # not kept per scenario: the total only
    assert stats.total("turns") == 4 and stats.per_scenario("turns") == {"a": 1, "b": 2}
    assert stats.total("calls") == 1 and stats.total("barge_ok") == 0


def test_deltas_merge_exactly_and_start_afresh() -> None:
    worker, master = VoiceStats(), VoiceStats()
    for _ in range(2):
        worker.count("turns", scenario="a")
        worker.count("turns_ok", scenario="a")
        worker.count("frames_sent", 50)
        master.merge(json.loads(json.dumps(worker.take_delta())))  # as Locust ships it
    assert worker.counters == {} and worker.scenario_counters == {}
    assert master.total("turns") == master.total("turns_ok") == 2
    assert master.per_scenario("turns_ok") == {"a": 2} and master.total("frames_sent") == 100


def test_a_counter_this_version_does_not_declare_is_skipped_on_merge() -> None:
    master = VoiceStats()
    payload = {
        "counters": {"calls": 3, "from_the_future": 9},
        "scenario_counters": [["from_the_future", "a", 1], ["calls", "a", 1]],
    }
    master.merge(payload)
    assert master.counters == {"calls": 3} and master.scenario_counters == {}


def _samples(stats: VoiceStats) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VoiceCollector(lambda: Snapshot(stats=stats, target="ws://a")))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }


def test_the_exposition_reads_the_declared_counters() -> None:
    assert set(COUNTER_METRICS) <= set(COUNTERS)
    assert {name for pair in OUTCOME_METRICS.values() for name in pair[:2]} <= set(COUNTERS)
    stats = VoiceStats()
    stats.count("calls", 5)
    stats.count("connect_attempts", 6)
    stats.count("calls_connected", 5)
    stats.count("turns", 3, scenario="quick")
    stats.count("turns_ok", 2, scenario="quick")
    stats.count("turns", 1, scenario="long")
    samples = _samples(stats)
    target = ("target", "ws://a")
    assert samples[("voice_loadtest_calls_total", (target,))] == 5
    assert samples[("voice_loadtest_connects_total", (("outcome", "failed"), target))] == 1
    turns = {
        labels: v for (name, labels), v in samples.items() if name == "voice_loadtest_turns_total"
    }
    assert turns == {
        (("outcome", "ok"), ("scenario", "long"), target): 0,
        (("outcome", "failed"), ("scenario", "long"), target): 1,
        (("outcome", "ok"), ("scenario", "quick"), target): 2,
        (("outcome", "failed"), ("scenario", "quick"), target): 1,
    }
