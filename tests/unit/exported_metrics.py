"""Every sample name and label the exporter can publish, from the real collector (a helper for
the dashboard and alert tests: a query must not name a metric or label that does not exist)."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from loadtest.metrics.exposition import AzureMonitorValue, RequestRow, Snapshot, VoiceCollector
from loadtest.metrics.slo import DEFAULT_SLO
from loadtest.metrics.voice_stats import VoiceStats

METRIC_NAME = re.compile(r"\bvoice_loadtest_[a-z0-9_]+")


def exported() -> dict[str, set[str]]:
    """Sample name (``…_bucket``, ``…_total``, …) → label names, with every optional family
    present (per-scenario histograms, SLO verdict, Azure Monitor)."""
    stats = VoiceStats()
    for name in ("ttfb_ms", "barge_in_ms", "turn_ms"):
        stats.observe(name, 700.0, scenario="s")
    stats.count("turns", scenario="s")
    stats.error("ttfb_timeout")
    snapshot = Snapshot(
        stats=stats,
        target="ws://agent/x",
        workers={"running": 1},
        worker_cpu_percent={"w1": 10.0},
        requests=[RequestRow("ttfb", 1, 0, 1.0, 700.0, 700.0, 700.0)],
        slo=DEFAULT_SLO,
        slo_verdict="pass",
        azure_monitor=[AzureMonitorValue("/subscriptions/x/r", "CpuPercentage", "Average", 1.0)],
        azure_monitor_errors={"throttled": 1},
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VoiceCollector(lambda: snapshot))
    names: dict[str, set[str]] = {}
    for family in registry.collect():
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names
