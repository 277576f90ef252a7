"""The run summary's counts beyond latencies: what the table, the JSON and the HTML report say
about answers after the run time, turns the stop timeout cut, and stop signals while silent."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from loadtest.metrics.exposition import Snapshot, VoiceCollector
from loadtest.metrics.report import render_report
from loadtest.metrics.summary import build_summary, format_table
from loadtest.metrics.voice_stats import VoiceStats


def _stats() -> VoiceStats:
    stats = VoiceStats()
    for value in (700.0, 710.0, 720.0):
        stats.observe("ttfb_ms", value)
    for name, n in (("turns", 3), ("turns_ok", 3), ("after_run_time", 2), ("turns_cut", 1),
                    ("stop_while_silent", 5)):  # fmt: skip
        stats.count(name, n)
    return stats


def test_counts_and_table_name_what_happened_after_the_run_time() -> None:
    summary = json.loads(json.dumps(build_summary(_stats())))
    counts = summary["counts"]
    assert (counts["after_run_time"], counts["turns_cut"], counts["stop_while_silent"]) == (2, 1, 5)
    table = format_table(summary)
    assert (
        "after the run time: 2 TTFB(s) measured while callers finished their turns "
        "(counted above); 1 turn(s) cut by the stop timeout (not judged)"
    ) in table
    assert "stop signals while the agent was silent: 5 (not barge-ins)" in table
    page = render_report(summary)
    assert "Stop signals while silent" in page and "TTFBs after the run time" in page


def test_a_plain_run_has_none_of_those_lines() -> None:
    stats = VoiceStats()
    stats.observe("ttfb_ms", 700.0)
    summary = build_summary(stats)
    assert summary["counts"]["after_run_time"] == summary["counts"]["stop_while_silent"] == 0
    table = format_table(summary)
    assert "after the run time" not in table and "while the agent was silent" not in table


def test_stops_while_silent_are_a_prometheus_counter() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VoiceCollector(lambda: Snapshot(stats=_stats(), target="ws://a/x")))
    value = registry.get_sample_value(
        "voice_loadtest_stops_while_silent_total", {"target": "ws://a/x"}
    )
    assert value == 5.0
