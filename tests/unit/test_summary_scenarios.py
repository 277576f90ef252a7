"""The summary's per-scenario stats, 1 ms distributions and per-window failures."""

from __future__ import annotations

import json

from loadtest.metrics.summary import build_summary, scenario_stats, timeline_entry
from loadtest.metrics.voice_stats import HISTOGRAMS, VoiceStats


def _stats() -> VoiceStats:
    stats = VoiceStats()
    for value in (600.4, 601.2, 601.9, 650.0):
        stats.observe("ttfb_ms", value, "quick_question")
    for value in (900.0, 910.0):
        stats.observe("ttfb_ms", value, "insurance_inquiry")
    stats.observe("barge_in_ms", 210.0, "insurance_inquiry")
    counts = (("turns", 4, "quick_question"), ("turns_ok", 4, "quick_question"),
              ("turns", 3, "insurance_inquiry"), ("turns_ok", 2, "insurance_inquiry"))  # fmt: skip
    for name, n, scenario in counts:
        stats.count(name, n, scenario)
    stats.error("first_byte_timeout")
    return stats


def test_scenarios_have_their_own_percentiles_and_success() -> None:
    scenarios = scenario_stats(_stats())
    assert sorted(scenarios) == ["insurance_inquiry", "quick_question"]
    quick = scenarios["quick_question"]
    assert quick["turns"] == 4 and quick["turn_success"] == 1.0
    assert quick["ttfb_ms"]["count"] == 4 and quick["ttfb_ms"]["p50"] == 601.5
    assert quick["barge_in_ms"]["count"] == 0 and quick["barge_in_ms"]["p50"] is None
    insurance = scenarios["insurance_inquiry"]
    assert insurance["turn_success"] == 2 / 3 and insurance["barge_in_ms"]["count"] == 1


def test_scenarios_survive_the_worker_to_master_merge() -> None:
    master = VoiceStats()
    master.merge(json.loads(json.dumps(_stats().take_delta())))
    assert scenario_stats(master) == scenario_stats(_stats())


def test_distributions_keep_the_histograms_1_ms_buckets() -> None:
    summary = json.loads(json.dumps(build_summary(_stats())))
    assert summary["distribution_bucket_ms"] == 1
    assert summary["distributions"]["ttfb_ms"] == [
        [600, 1], [601, 2], [650, 1], [900, 1], [910, 1]
    ]  # fmt: skip
    assert summary["scenarios"]["quick_question"]["ttfb_ms"]["count"] == 4
    # every distribution shares the one recorded bucket width
    widths = {HISTOGRAMS[name][0] for name in summary["distributions"]}
    assert widths == {summary["distribution_bucket_ms"]}


def test_timeline_window_counts_failures_by_name() -> None:
    window = _stats()
    window.error("connect_refused", 2)
    entry = timeline_entry(window, t_s=5.0, users=3, cpu=10.0)
    assert entry["failures"] == {"connect_refused": 2, "first_byte_timeout": 1}
    assert timeline_entry(VoiceStats(), t_s=10.0, users=3, cpu=10.0)["failures"] == {}
