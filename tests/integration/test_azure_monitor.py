"""The Azure Monitor poller against a local HTTPS ARM metrics stub (real TLS, real SDK client,
a fixed-token credential; no Azure reachable here)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import EnvironmentCredential

from bench.tlsfiles import TlsFiles, make_tls_files
from loadtest.metrics.azure_monitor import AzureMonitorPoller, classify_error
from loadtest.metrics.azure_monitor_config import (
    Aggregation,
    AzureMonitorConfig,
    MetricSpec,
    parse_azure_monitor_config,
)
from tests.integration.arm_metrics_stub import ArmMetricsStub, RunningStub

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789"
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/voice/providers"
AGENT = f"{SUB}/Microsoft.App/containerApps/agent"
WORKER = f"{SUB}/Microsoft.App/containerApps/worker"
MISSING = f"{SUB}/Microsoft.App/containerApps/missing"
LOGGER = "voice-loadtest.azure_monitor"


class FixedCredential:
    """A TokenCredential that hands out one fixed token and records the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("arm-tls"))


@pytest.fixture
def stub(tls: TlsFiles) -> Iterator[ArmMetricsStub]:
    with RunningStub(tls) as running:
        yield running


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_exports_the_stub_values_over_verified_tls(
    stub: ArmMetricsStub, tls: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for rid, cpu, memory, requests in ((AGENT, 42.5, 61.0, 120.0), (WORKER, 12.0, 30.0, 8.0)):
        stub.set_value(rid, "CpuPercentage", cpu)
        stub.set_value(rid, "MemoryPercentage", memory)
        stub.set_value(rid, "Requests", requests)
    config = parse_azure_monitor_config({
        "AZURE_MONITOR_RESOURCE_IDS": f"{AGENT},{WORKER}",
        "AZURE_MONITOR_METRICS": "CpuPercentage,MemoryPercentage,Requests:Total",
        "AZURE_MONITOR_ENDPOINT": stub.endpoint,
    })  # fmt: skip
    credential = FixedCredential()
    with AzureMonitorPoller(config, credential=credential, connection_verify=str(tls.ca)) as poller:
        poller.poll_once()
        got = {(s.resource, s.metric, s.aggregation): s.value for s in poller.latest()}
        summary, errors = poller.summary(), poller.errors()
    assert got == {
        ("agent", "CpuPercentage", Aggregation.AVERAGE): 42.5,
        ("agent", "MemoryPercentage", Aggregation.AVERAGE): 61.0,
        ("agent", "Requests", Aggregation.TOTAL): 120.0,
        ("worker", "CpuPercentage", Aggregation.AVERAGE): 12.0,
        ("worker", "MemoryPercentage", Aggregation.AVERAGE): 30.0,
        ("worker", "Requests", Aggregation.TOTAL): 8.0,
    }
    assert errors == {}
    # Both non-null buckets of the window count; the empty newest one does not.
    assert summary["agent"]["CpuPercentage"]["Average"] == {"count": 2, "max": 42.5, "avg": 37.5}
    assert summary["worker"]["Requests"]["Total"] == {"count": 2, "max": 8.0, "avg": 3.0}

    seen = stub.seen()
    assert [(r.resource_id, r.query["metricnames"], r.query["aggregation"]) for r in seen] == [
        (AGENT, "CpuPercentage,MemoryPercentage", "Average"),
        (AGENT, "Requests", "Total"),
        (WORKER, "CpuPercentage,MemoryPercentage", "Average"),
        (WORKER, "Requests", "Total"),
    ]
    for request in seen:
        assert request.authorization == f"Bearer {TOKEN}"
        assert request.path == f"{request.resource_id}/providers/Microsoft.Insights/metrics"
        assert request.query["api-version"] == "2024-02-01"
        assert request.query["interval"] == "PT1M"
        start, end = request.query["timespan"].split("/")
        assert start.endswith("Z") and end.endswith("Z")
    assert set(credential.scopes) == {(f"{stub.endpoint}/.default",)}
    # azure-core's per-request log lines stay out of an INFO-level (Locust) log.
    assert [r for r in caplog.records if r.name.startswith("azure.core")] == []


def test_survives_auth_throttling_and_unknown_resources(
    stub: ArmMetricsStub, tls: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    stub.set_value(AGENT, "CpuPercentage", 55.0)
    stub.script(AGENT, 401, 403, 401, 429, 429)  # then successes; MISSING is always a 404
    stub.retry_after[429] = "1"
    config = AzureMonitorConfig(
        resource_ids=(AGENT, MISSING), metrics=(MetricSpec("CpuPercentage"),),
        interval_s=0.05, endpoint=stub.endpoint,
    )  # fmt: skip
    caplog.set_level(logging.INFO, logger=LOGGER)
    poller = AzureMonitorPoller(config, credential=FixedCredential(), connection_verify=str(tls.ca))
    try:
        poller.start()
        wait_for(lambda: bool(poller.latest()))
        wait_for(lambda: poller.errors().get("not_found", 0) >= 3)
        assert poller.running
        samples, errors = poller.latest(), poller.errors()
    finally:
        poller.close()
    assert not poller.running

    assert [(s.resource, s.metric, s.value) for s in samples] == [("agent", "CpuPercentage", 55.0)]
    assert errors["auth"] == 3 and errors["throttled"] == 2 and errors["not_found"] >= 3
    assert set(errors) == {"auth", "throttled", "not_found"}

    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert len(warnings) == 3, [r.getMessage() for r in warnings]
    messages = {cause: [r.getMessage() for r in warnings if f"({cause})" in r.getMessage()]
                for cause in ("auth", "throttled", "not_found")}  # fmt: skip
    assert all(len(found) == 1 for found in messages.values()), messages
    assert "Monitoring Reader" in messages["auth"][0]
    assert "AZURE_MONITOR_INTERVAL_SEC" in messages["throttled"][0]
    assert "missing" in messages["not_found"][0]
    assert all(TOKEN not in r.getMessage() for r in caplog.records)

    # A 429 ends the round (MISSING is not asked) and the next round honours Retry-After.
    seen = stub.seen()
    first_429 = next(i for i, r in enumerate(seen) if r.status == 429)
    assert seen[first_429 + 1].resource_id == AGENT
    assert seen[first_429 + 1].at_s - seen[first_429].at_s >= 0.9


def test_a_failing_credential_is_reported_once(
    stub: ArmMetricsStub,
    tls: TlsFiles,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """azure.identity warns on every failed token request; after the first, only counts."""
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_USERNAME",
        "AZURE_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)  # fmt: skip
    stub.set_value(AGENT, "CpuPercentage", 1.0)
    config = AzureMonitorConfig(
        resource_ids=(AGENT,), metrics=(MetricSpec("CpuPercentage"),),
        interval_s=0.02, endpoint=stub.endpoint,
    )  # fmt: skip
    caplog.set_level(logging.WARNING)
    credential = EnvironmentCredential()  # unconfigured: fails without touching the network
    with AzureMonitorPoller(config, credential=credential, connection_verify=str(tls.ca)) as poller:
        poller.start()
        wait_for(lambda: poller.errors().get("auth", 0) >= 4)
        assert poller.running
    identity = [r for r in caplog.records if r.name.startswith("azure.identity")]
    ours = [r for r in caplog.records if r.name == LOGGER]
    assert len(identity) == 1 and "EnvironmentCredential" in identity[0].getMessage()
    assert len(ours) == 1 and "(auth)" in ours[0].getMessage()
    assert stub.seen() == []
    # Outside the poller, azure.identity's logging is untouched.
    with pytest.raises(ClientAuthenticationError):
        credential.get_token("https://management.azure.com/.default")
    assert len([r for r in caplog.records if r.name.startswith("azure.identity")]) == 2


def test_tls_is_verified(stub: ArmMetricsStub) -> None:
    stub.set_value(AGENT, "CpuPercentage", 1.0)
    config = AzureMonitorConfig(
        resource_ids=(AGENT,), metrics=(MetricSpec("CpuPercentage"),), endpoint=stub.endpoint
    )
    with AzureMonitorPoller(config, credential=FixedCredential()) as poller:  # system CAs only
        poller.poll_once()
        assert poller.errors() == {"network": 1}
        assert poller.latest() == []
    assert stub.seen() == []


def test_polls_in_a_gevent_patched_process(stub: ArmMetricsStub, tls: TlsFiles) -> None:
    """The Locust master monkey-patches: the poller's thread is then a greenlet."""
    stub.set_value(AGENT, "CpuPercentage", 77.0)
    script = textwrap.dedent(f"""
        from gevent import monkey
        monkey.patch_all()
        import json, threading, time
        from azure.core.credentials import AccessToken
        from loadtest.metrics.azure_monitor import AzureMonitorPoller
        from loadtest.metrics.azure_monitor_config import parse_azure_monitor_config

        class Credential:
            def get_token(self, *scopes, **kwargs):
                return AccessToken({TOKEN!r}, int(time.time()) + 3600)

        config = parse_azure_monitor_config({{
            "AZURE_MONITOR_RESOURCE_IDS": {AGENT!r},
            "AZURE_MONITOR_METRICS": "CpuPercentage",
            "AZURE_MONITOR_ENDPOINT": {stub.endpoint!r},
        }})
        poller = AzureMonitorPoller(config, credential=Credential(), connection_verify={str(tls.ca)!r})
        poller.start()
        deadline = time.monotonic() + 20
        while not poller.latest() and time.monotonic() < deadline:
            time.sleep(0.05)
        running = poller.running
        poller.close()
        print(json.dumps({{
            "values": [s.value for s in poller.latest()], "errors": poller.errors(),
            "running": running, "patched": monkey.is_module_patched("threading"),
        }}))
    """)  # noqa: E501
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"values": [77.0], "errors": {}, "running": True, "patched": True}


def _with_status(exc: HttpResponseError, status: int) -> HttpResponseError:
    exc.status_code = status
    return exc


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (ClientAuthenticationError("no token"), "auth"),
        (_with_status(HttpResponseError("forbidden"), 403), "auth"),
        (_with_status(HttpResponseError("throttled"), 429), "throttled"),
        (ResourceNotFoundError("gone"), "not_found"),
        (_with_status(HttpResponseError("bad metric"), 400), "http_400"),
        (_with_status(HttpResponseError("oops"), 503), "http_503"),
        (ServiceRequestError("dns"), "network"),
        (ServiceResponseError("reset"), "network"),
        (HttpResponseError("no status"), "other"),
        (ValueError("bug"), "other"),
    ],
)
def test_classify_error(exc: BaseException, cause: str) -> None:
    assert classify_error(exc) == cause


def test_needs_a_resource() -> None:
    with pytest.raises(ValueError, match="at least one resource"):
        AzureMonitorPoller(AzureMonitorConfig(), credential=FixedCredential())
