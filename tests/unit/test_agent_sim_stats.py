"""Agent counters and their Prometheus rendering (injected registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.agent_sim.stats import AgentStats, AgentStatsCollector


def test_lateness_histogram_and_quantiles() -> None:
    stats = AgentStats()
    for lateness_ms in [0, 0, 1, 1, 1, 2, 4, 8, 30, 2000]:
        stats.record_lateness(lateness_ms * 1_000_000)
    stats.record_lateness(-5)
    assert stats.lateness_count == 11
    assert stats.lateness_quantile_s(0.5) == 0.001
    assert stats.lateness_quantile_s(0.7) == 0.005
    assert stats.lateness_quantile_s(1.0) == float("inf")
    assert abs(stats.lateness_sum_s - 2.047) < 1e-9


def test_collector_renders_metrics() -> None:
    stats = AgentStats()
    stats.active_connections = 3
    stats.turns_total = 7
    stats.faults["stall"] += 2
    stats.bad_inputs["not_json"] += 1
    stats.closes["1000"] += 4
    stats.record_loop_lag(0.004)
    stats.record_loop_lag(0.001)
    stats.record_lateness(3_000_000)
    registry = CollectorRegistry()
    registry.register(AgentStatsCollector(stats))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    assert samples[("voice_loadtest_agent_active_connections", ())] == 3
    assert samples[("voice_loadtest_agent_turns_total", ())] == 7
    assert samples[("voice_loadtest_agent_faults_injected_total", (("kind", "stall"),))] == 2
    assert samples[("voice_loadtest_agent_bad_inputs_total", (("kind", "not_json"),))] == 1
    assert samples[("voice_loadtest_agent_closes_total", (("code", "1000"),))] == 4
    assert samples[("voice_loadtest_agent_event_loop_lag_seconds", ())] == 0.001
    assert samples[("voice_loadtest_agent_event_loop_lag_max_seconds", ())] == 0.004
    bucket = ("voice_loadtest_agent_frame_lateness_seconds_bucket", (("le", "0.003"),))
    assert samples[bucket] == 1
    assert samples[("voice_loadtest_agent_frame_lateness_seconds_count", ())] == 1
