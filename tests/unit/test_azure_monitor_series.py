"""Azure Monitor samples, run summary and error counts (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loadtest.metrics.azure_monitor_config import Aggregation, AzureMonitorConfig, MetricSpec
from loadtest.metrics.azure_monitor_series import MonitorSample, MonitorSeries

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/voice/providers"
AGENT = f"{SUB}/Microsoft.App/containerApps/agent"
PLAN = f"{SUB}/Microsoft.Web/serverFarms/plan"
CPU = MetricSpec("CpuPercentage")
REQUESTS = MetricSpec("Requests", Aggregation.TOTAL)
CONFIG = AzureMonitorConfig(resource_ids=(AGENT, PLAN), metrics=(CPU, REQUESTS))
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def test_latest_is_the_newest_non_null_point_per_key() -> None:
    series = MonitorSeries(CONFIG)
    series.observe(AGENT, CPU, [(minute(0), 10.0), (minute(1), 42.5), (minute(2), None)])
    series.observe(AGENT, REQUESTS, [(minute(1), 7.0)])
    assert series.latest() == [
        MonitorSample("agent", "CpuPercentage", Aggregation.AVERAGE, 42.5, minute(1), AGENT),
        MonitorSample("agent", "Requests", Aggregation.TOTAL, 7.0, minute(1), AGENT),
    ]
    # An older window does not move it back; a revised newest bucket replaces the value.
    series.observe(AGENT, CPU, [(minute(0), 99.0)])
    series.observe(AGENT, CPU, [(minute(1), 44.0), (minute(2), float("nan"))])
    (cpu, _) = series.latest()
    assert (cpu.value, cpu.timestamp) == (44.0, minute(1))
    assert cpu.timestamp_s == minute(1).timestamp()


def test_naive_timestamps_are_utc() -> None:
    series = MonitorSeries(CONFIG)
    series.observe(PLAN, CPU, [(minute(3).replace(tzinfo=None), 1.0)])
    assert series.latest()[0].timestamp == minute(3)


def test_summary_counts_each_bucket_once_over_the_run() -> None:
    series = MonitorSeries(CONFIG)
    series.begin(minute(1) + timedelta(seconds=30))  # run starts inside the 12:01 bucket
    # Overlapping windows, as successive polls return them.
    series.observe(AGENT, CPU, [(minute(0), 90.0), (minute(1), 20.0), (minute(2), 30.0)])
    series.observe(AGENT, CPU, [(minute(1), 20.0), (minute(2), 40.0), (minute(3), None)])
    series.observe(AGENT, CPU, [(minute(3), 60.0)])
    summary = series.summary()
    assert summary["agent"]["CpuPercentage"]["Average"] == {"count": 3, "max": 60.0, "avg": 40.0}
    # Configured but never seen: listed with no data.
    assert summary["agent"]["Requests"]["Total"] == {"count": 0, "max": None, "avg": None}
    assert list(summary) == ["agent", "plan"]
    assert summary["plan"] == {
        "CpuPercentage": {"Average": {"count": 0, "max": None, "avg": None}},
        "Requests": {"Total": {"count": 0, "max": None, "avg": None}},
    }
    # The pre-run bucket is still the live value it was, were it the newest.
    assert series.latest()[0].value == 60.0


def test_begin_drops_buckets_seen_before_the_run() -> None:
    series = MonitorSeries(CONFIG)
    series.observe(AGENT, REQUESTS, [(minute(0), 5.0), (minute(1), 7.0)])
    series.begin(minute(1))
    assert series.summary()["agent"]["Requests"]["Total"] == {"count": 1, "max": 7.0, "avg": 7.0}


def test_unconfigured_metric_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not configured"):
        MonitorSeries(CONFIG).observe(AGENT, MetricSpec("Other"), [])


def test_errors_count_by_cause_and_flag_the_first() -> None:
    series = MonitorSeries(CONFIG)
    assert series.errors() == {}
    assert [series.record_error(c) for c in ("auth", "throttled", "auth", "http_500")] == [
        True, True, False, True,
    ]  # fmt: skip
    assert series.errors() == {"auth": 2, "http_500": 1, "throttled": 1}
