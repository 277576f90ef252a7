"""Azure Monitor settings, query plan and time window (pure)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from loadtest.errors import ConfigError
from loadtest.metrics.azure_monitor_config import (
    DEFAULT_ENDPOINT,
    MAX_METRICS_PER_QUERY,
    Aggregation,
    AzureMonitorConfig,
    MetricQuery,
    MetricSpec,
    parse_azure_monitor_config,
    plan_queries,
    query_timespan,
    resource_labels,
)

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
AGENT = f"{SUB}/resourceGroups/voice/providers/Microsoft.App/containerApps/agent"
PLAN = f"{SUB}/resourceGroups/voice/providers/Microsoft.Web/serverFarms/plan"


def test_unset_is_off_with_defaults() -> None:
    config = parse_azure_monitor_config({})
    assert not config.enabled
    assert config == AzureMonitorConfig()
    assert config.interval_s == 60 and config.endpoint == DEFAULT_ENDPOINT
    assert not parse_azure_monitor_config({"AZURE_MONITOR_RESOURCE_IDS": " , "}).enabled


def test_full_configuration_parses() -> None:
    config = parse_azure_monitor_config({
        "AZURE_MONITOR_RESOURCE_IDS": f" {AGENT} , {PLAN}/ ,{AGENT.upper()}",
        "AZURE_MONITOR_METRICS": "CpuPercentage, MemoryPercentage,Requests:total,"
        "Requests:Maximum,cpupercentage:Average",
        "AZURE_MONITOR_INTERVAL_SEC": "15",
        "AZURE_MONITOR_ENDPOINT": "https://management.usgovcloudapi.net/",
    })  # fmt: skip
    assert config.enabled
    assert config.resource_ids == (AGENT, PLAN)  # trailing slash and case-duplicate dropped
    assert config.metrics == (
        MetricSpec("CpuPercentage", Aggregation.AVERAGE),
        MetricSpec("MemoryPercentage", Aggregation.AVERAGE),
        MetricSpec("Requests", Aggregation.TOTAL),
        MetricSpec("Requests", Aggregation.MAXIMUM),
    )
    assert config.interval_s == 15
    assert config.endpoint == "https://management.usgovcloudapi.net"


def test_metric_names_may_contain_spaces() -> None:
    config = parse_azure_monitor_config({
        "AZURE_MONITOR_RESOURCE_IDS": AGENT, "AZURE_MONITOR_METRICS": "Percentage CPU:Maximum",
    })  # fmt: skip
    assert config.metrics == (MetricSpec("Percentage CPU", Aggregation.MAXIMUM),)


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("AZURE_MONITOR_RESOURCE_IDS", "agent", "'agent' is not an ARM resource ID"),
        ("AZURE_MONITOR_RESOURCE_IDS", f"{SUB}/resourceGroups/voice", "expected IDs like /sub"),
        (
            "AZURE_MONITOR_RESOURCE_IDS",
            f"{SUB}/resourceGroups/voice/providers/Microsoft.App/containerApps",
            "is not an ARM resource ID",
        ),
        ("AZURE_MONITOR_RESOURCE_IDS", f"{SUB}//providers/A/b/c", "is not an ARM resource ID"),
        ("AZURE_MONITOR_METRICS", "Requests:Sum", "aggregations: Average, Minimum, Maximum"),
        ("AZURE_MONITOR_METRICS", ":Total", "is not NAME or NAME:AGGREGATION"),
        ("AZURE_MONITOR_INTERVAL_SEC", "5", "expected a whole number of seconds >= 10"),
        ("AZURE_MONITOR_INTERVAL_SEC", "1m", "AZURE_MONITOR_INTERVAL_SEC='1m' is invalid"),
        ("AZURE_MONITOR_ENDPOINT", "http://management.azure.com", "expected an https://"),
        ("AZURE_MONITOR_ENDPOINT", "management.azure.com", "expected an https://"),
    ],
)
def test_invalid_values_name_variable_value_and_allowed(env: str, value: str, message: str) -> None:
    base = {"AZURE_MONITOR_RESOURCE_IDS": AGENT, "AZURE_MONITOR_METRICS": "CpuPercentage"}
    with pytest.raises(ConfigError) as info:
        parse_azure_monitor_config({**base, env: value})
    text = str(info.value)
    assert text.startswith(f"{env}={value!r} is invalid: "), text
    assert message in text
    assert "\n" not in text


def test_invalid_values_fail_even_when_off() -> None:
    with pytest.raises(ConfigError, match="AZURE_MONITOR_INTERVAL_SEC"):
        parse_azure_monitor_config({"AZURE_MONITOR_INTERVAL_SEC": "0"})


def test_metrics_are_required_with_resources() -> None:
    with pytest.raises(ConfigError) as info:
        parse_azure_monitor_config({"AZURE_MONITOR_RESOURCE_IDS": AGENT})
    assert str(info.value).startswith("AZURE_MONITOR_METRICS='' is invalid: required when")


def test_labels_are_resource_names_qualified_only_when_ambiguous() -> None:
    staging = f"{SUB}/resourceGroups/staging/providers/Microsoft.App/containerApps/agent"
    other_sub = AGENT.replace("0001", "0002")
    assert resource_labels([AGENT, PLAN]) == {AGENT: "agent", PLAN: "plan"}
    assert resource_labels([AGENT, staging, PLAN]) == {
        AGENT: "voice/agent", staging: "staging/agent", PLAN: "plan"
    }  # fmt: skip
    assert resource_labels([AGENT, other_sub]) == {AGENT: AGENT, other_sub: other_sub}


def test_plan_groups_by_aggregation_and_chunks_at_the_arm_limit() -> None:
    names = [f"M{i}" for i in range(MAX_METRICS_PER_QUERY + 1)]
    specs = (*(MetricSpec(n) for n in names), MetricSpec("Requests", Aggregation.TOTAL))
    plan = plan_queries(AzureMonitorConfig(resource_ids=(AGENT, PLAN), metrics=specs))
    assert plan == (
        MetricQuery(AGENT, tuple(names[:MAX_METRICS_PER_QUERY]), Aggregation.AVERAGE),
        MetricQuery(AGENT, (names[-1],), Aggregation.AVERAGE),
        MetricQuery(AGENT, ("Requests",), Aggregation.TOTAL),
        MetricQuery(PLAN, tuple(names[:MAX_METRICS_PER_QUERY]), Aggregation.AVERAGE),
        MetricQuery(PLAN, (names[-1],), Aggregation.AVERAGE),
        MetricQuery(PLAN, ("Requests",), Aggregation.TOTAL),
    )
    assert plan[2].metricnames == "Requests" and plan[0].metricnames.startswith("M0,M1,")
    assert Aggregation.TOTAL.field == "total"


def test_timespan_is_twice_the_interval_but_at_least_five_minutes() -> None:
    now = datetime(2025, 3, 1, 12, 0, 30, 250_000, tzinfo=UTC)
    assert query_timespan(now, 60) == "2025-03-01T11:55:30Z/2025-03-01T12:00:30Z"
    assert query_timespan(now, 600) == "2025-03-01T11:40:30Z/2025-03-01T12:00:30Z"
    in_cest = now.astimezone(timezone(timedelta(hours=2)))
    assert query_timespan(in_cest, 10) == "2025-03-01T11:55:30Z/2025-03-01T12:00:30Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        query_timespan(now.replace(tzinfo=None), 60)


def test_core_imports_without_azure_or_gevent() -> None:
    code = (
        "import sys, loadtest.metrics.azure_monitor_config, loadtest.metrics.azure_monitor_series;"
        "bad = [m for m in ('gevent', 'azure', 'locust') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
