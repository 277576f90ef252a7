"""alt-config.schema.json: ALT's documented YAML format, and the exports validate against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import loadtest.alt
from loadtest.alt.config import AutoStop, ExportRequest
from loadtest.alt.export import export_test
from loadtest.alt.limits import AltLimits
from tests.unit.test_alt_export import write_cache

SCHEMA = json.loads((Path(loadtest.alt.__file__).parent / "alt-config.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

RG = "/subscriptions/abcdef01-2345-6789-0abc-def012345678/resourceGroups/sample-rg/providers"

# The sample of Microsoft Learn "Configure a load test in YAML" (reference-test-config-yaml).
DOCUMENTED_SAMPLE = """
version: v0.1
testId: SampleTest
displayName: Sample Test
description: Load test website home page
testPlan: SampleTest.jmx
testType: JMX
engineInstances: 1
subnetId: {RG}/Microsoft.Network/virtualNetworks/load-testing-vnet/subnets/load-testing
configurationFiles:
  - 'sampledata.csv'
  - 'testfragment.jmx'
zipArtifacts:
   - bigdata.zip
splitAllCSVs: True
failureCriteria:
  - avg(response_time_ms) > 300
  - percentage(error) > 50
  - GetCustomerDetails: avg(latency) >200
autoStop:
  errorPercentage: 80
  timeWindow: 60
secrets:
  - name: my-secret
    value: https://akv-contoso.vault.azure.net/secrets/MySecret/abc1234567890def12345
keyVaultReferenceIdentity: {RG}/Microsoft.ManagedIdentity/userAssignedIdentities/sample-identity
""".replace("{RG}", RG)

DOCUMENTED_SERVER_CRITERIA = """
version: v0.1
testId: sampletest
testPlan: sample.py
testType: Locust
engineInstances: 1
properties:
  userPropertyFile: locust.conf
failureCriteria:
  clientMetrics:
    - p90(response_time_ms) > 10000
    - getCustomerDetails: avg(latency) > 200
  serverMetrics:
    - resourceId: {RG}/Microsoft.Compute/virtualMachines/sample-vm
      metricNamespace: Microsoft.Compute/virtualMachines
      metricName: Percentage CPU
      aggregation: Average
      condition: GreaterThan
      value: 80
""".replace("{RG}", RG)


def _errors(doc: dict[str, Any]) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(doc)]


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("sample", [DOCUMENTED_SAMPLE, DOCUMENTED_SERVER_CRITERIA])
def test_documented_samples_validate(sample: str) -> None:
    doc = yaml.safe_load(sample)
    doc["testId"] = doc["testId"].lower()  # the docs' sample breaks its own [a-z0-9_-] rule
    assert _errors(doc) == []


@pytest.mark.parametrize("zipped", [False, True])
def test_generated_config_validates(tmp_path: Path, zipped: bool) -> None:
    cache = write_cache(tmp_path / "cache", [200_000] * 4)
    limits = AltLimits(max_file_bytes=600_000) if zipped else AltLimits()  # archive ~0.3 MB fits
    request = ExportRequest(
        ws_url="wss://agent.example.com/ws", engines=4, users=800, spawn_rate=4,
        knobs={"TURNS_PER_USER": "3"},
        secrets=("WS_AUTH_TOKEN=https://kv-voice.vault.azure.net/secrets/token",),
        autostop=AutoStop(75.5, 120),
    )  # fmt: skip
    result = export_test(request, tmp_path / "out", pcm_dir=cache, limits=limits)
    doc = yaml.safe_load(result.config_path.read_text())
    assert ("zipArtifacts" in doc) is zipped
    assert _errors(doc) == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"testId": "Voice Test"}, "does not match"),
        ({"version": "v1"}, "'v0.1' was expected"),
        ({"engineInstances": 401}, "greater than the maximum"),
        ({"testPlan": "test.jmx"}, "does not match"),
        ({"failureCriteria": {"clientMetrics": ["p80(response_time_ms) > 300"]}}, "not valid"),
        ({"failureCriteria": {"clientMetrics": ["percentage(error) < 5"]}}, "not valid"),
        ({"failureCriteria": {"clientMetrics": ["p95(response_time_ms) > 2.5"]}}, "not valid"),
        ({"secrets": [{"name": "T", "value": "hunter2"}]}, "does not match"),
        ({"autoStop": "off"}, "is not valid"),
        ({"zipArtifacts": [f"a{i}.zip" for i in range(6)]}, "is too long"),
        ({"unknownKey": 1}, "Additional properties"),
    ],
)
def test_schema_rejects_what_alt_rejects(change: dict[str, Any], fragment: str) -> None:
    doc = {
        "version": "v0.1", "testId": "voice", "testPlan": "locustfile.py",
        "testType": "Locust", "engineInstances": 1, **change,
    }  # fmt: skip
    errors = _errors(doc)
    assert errors and any(fragment in error for error in errors), errors
