"""The run summary: the outage window, the agent's anomalies, lost workers — in the JSON, the
terminal table, the HTML report and the Prometheus exposition alike."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from loadtest.metrics.exposition import Snapshot, VoiceCollector
from loadtest.metrics.report import render_report
from loadtest.metrics.summary import build_summary, format_table
from loadtest.metrics.voice_stats import INBOUND_ANOMALIES, VoiceStats

T0 = 1_760_000_000.0  # an epoch instant: 2025-10-09T08:53:20Z


def _stats(*, failed_connects: int = 0) -> VoiceStats:
    stats = VoiceStats()
    for name, n in (("calls", 4), ("connect_attempts", 4 + failed_connects),
                    ("calls_connected", 4), ("turns", 10), ("turns_ok", 10)):  # fmt: skip
        stats.count(name, n)
    for _ in range(10):
        stats.observe("ttfb_ms", 700.0)
    return stats


def test_a_clean_run_has_every_anomaly_at_zero_and_no_outage() -> None:
    summary = json.loads(json.dumps(build_summary(_stats())))
    assert {name: summary["counts"][name] for name in INBOUND_ANOMALIES} == dict.fromkeys(
        INBOUND_ANOMALIES, 0
    )
    assert summary["counts"]["connect_failures"] == 0 and summary["counts"]["worker_lost"] == 0
    assert summary["outage"] is None and summary["workers_lost"] == []
    assert summary["slo"]["verdict"] == "pass" and summary["slo"]["warnings"] == []
    table = format_table(summary)
    assert "anomalies" not in table and "connection failures" not in table


def test_the_outage_window_spans_first_to_last_failed_attempt_across_workers() -> None:
    one, two, total = _stats(failed_connects=5), VoiceStats(), VoiceStats()
    one.note_span("connect_failure", T0 + 2.0)
    one.note_span("connect_failure", T0 + 7.5)
    two.count("connect_attempts", 3)
    two.note_span("connect_failure", T0 + 1.25)
    two.note_span("connect_failure", T0 + 11.5)
    for worker in (one, two):
        total.merge(json.loads(json.dumps(worker.take_delta())))
    summary = build_summary(total)
    assert summary["outage"] == {
        "first_failure_at": "2025-10-09T08:53:21.250+00:00",
        "last_failure_at": "2025-10-09T08:53:31.500+00:00",
        "window_s": 10.2,
        "failed_attempts": 8,
    }
    assert summary["counts"]["connect_failures"] == 8
    assert (
        "connection failures: 8 of 12 attempts failed, from 08:53:21.250 to 08:53:31.500 UTC "
        "(10.2 s)" in format_table(summary)
    )
    page = render_report(summary)
    assert 'id="outage"' in page and "2025-10-09 08:53:21" in page


def test_inbound_anomalies_reach_the_counts_the_table_the_report_and_metrics() -> None:
    stats = _stats()
    stats.count("inbound_malformed", 9)
    stats.count("protocol_errors", 2)
    summary = build_summary(stats)
    assert summary["counts"]["inbound_malformed"] == 9
    assert summary["counts"]["protocol_errors"] == 2 and summary["counts"]["empty_audio"] == 0
    assert "agent anomalies: inbound_malformed=9, protocol_errors=2" in format_table(summary)
    page = render_report(summary)
    row = page.split('id="anomalies-table"')[1].split("inbound_malformed")[1]
    assert row.split("</td>")[1].endswith(">9")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VoiceCollector(lambda: Snapshot(stats=stats, target="ws://a")))
    value = registry.get_sample_value(
        "voice_loadtest_inbound_anomalies_total", {"target": "ws://a", "kind": "inbound_malformed"}
    )
    assert value == 9.0
    assert (
        registry.get_sample_value(
            "voice_loadtest_inbound_anomalies_total", {"target": "ws://a", "kind": "stray_stops"}
        )
        == 0.0
    )


def test_a_lost_worker_is_named_its_calls_counted_and_the_verdict_at_least_warn() -> None:
    lost = [{"worker": "host_abc", "lost_at": "2025-10-09T08:53:30.000+00:00", "t_s": 10.0,
             "calls_in_flight": 5}]  # fmt: skip
    summary = build_summary(_stats(), workers_lost=lost)
    assert summary["workers_lost"] == lost and summary["counts"]["worker_lost"] == 5
    assert summary["counts"]["failures"] == {}  # not agent failures
    slo = summary["slo"]
    assert slo["verdict"] == "warn" and slo["exit_code"] == 0
    assert (
        "1 load worker(s) went missing" in slo["warnings"][0] and "5 call(s)" in slo["warnings"][0]
    )
    table = format_table(summary)
    assert "worker lost: host_abc at 08:53:30.000 UTC (5 calls in flight)" in table
    assert "WARNING: 1 load worker(s) went missing" in table
    page = render_report(summary)
    assert 'id="workers-lost-table"' in page and "host_abc" in page and 'id="slo-warnings"' in page
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VoiceCollector(lambda: Snapshot(stats=VoiceStats(), workers_lost=1,
                                                       calls_lost=5)))  # fmt: skip
    assert registry.get_sample_value("voice_loadtest_workers_lost_total", {"target": ""}) == 1
    assert registry.get_sample_value("voice_loadtest_worker_lost_calls_total", {"target": ""}) == 5


def test_a_lost_worker_never_hides_a_failing_or_invalid_run() -> None:
    lost = [{"worker": "w", "lost_at": "x", "t_s": 1.0, "calls_in_flight": 1}]
    failing = _stats()
    for _ in range(30):
        failing.observe("ttfb_ms", 9_000.0)
    assert build_summary(failing, workers_lost=lost)["slo"]["verdict"] == "fail"
    assert build_summary(VoiceStats(), workers_lost=lost)["slo"]["verdict"] == "invalid"
