"""Export validation and the alt-config.yaml document (pure)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
import yaml

from loadtest.alt.config import (
    AutoStop,
    ExportRequest,
    check_request,
    config_document,
    parse_duration_s,
    parse_secret,
    render_config,
    validate_test_id,
)
from loadtest.alt.criteria import map_slo
from loadtest.alt.limits import ASSUMED_CALLERS_PER_ENGINE
from loadtest.errors import ConfigError
from loadtest.metrics.slo import DEFAULT_SLO

URL = "wss://agent.example.com/api/v1/media/stream"
VAULT = "https://kv-voice.vault.azure.net/secrets/agent-token"
IDENTITY = (
    "/subscriptions/abcdef01-2345-6789-0abc-def012345678/resourceGroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/alt-id"
)


def _check(**changes: object) -> tuple[object, tuple[str, ...]]:
    return check_request(replace(ExportRequest(ws_url=URL), **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize("test_id", ["ab", "voice-agent_load-01", "x" * 50])
def test_valid_test_ids(test_id: str) -> None:
    assert validate_test_id(test_id) == test_id


@pytest.mark.parametrize(
    ("test_id", "hint"),
    [("My Test", "'my-test'"), ("a", None), ("x" * 51, None), ("voice.agent", "'voice-agent'")],
)
def test_invalid_test_id_names_the_rule_and_suggests_one(test_id: str, hint: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_test_id(test_id)
    message = str(caught.value)
    assert f"--test-id {test_id!r} is invalid" in message and "2-50 characters" in message
    assert "\n" not in message
    if hint:
        assert f"e.g. {hint}" in message


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("600", 600), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2h5m10s", 7510), ("24h", 86400)],
)
def test_duration_in_seconds(raw: str, seconds: int) -> None:
    assert parse_duration_s(raw) == seconds


@pytest.mark.parametrize("raw", ["", "0", "0s", "25h", "10 minutes", "1.5h", "m"])
def test_bad_duration_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="--duration .* 1s to 24h"):
        parse_duration_s(raw)


def test_key_vault_secret_is_a_reference() -> None:
    secret = parse_secret(f"WS_AUTH_TOKEN={VAULT}/0123abcd")
    assert (secret.name, secret.uri) == ("WS_AUTH_TOKEN", f"{VAULT}/0123abcd")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("WS_AUTH_TOKEN=hunter2", "not a Key Vault secret identifier"),
        (f"WS_AUTH_TOKEN={VAULT.replace('https', 'http')}", "not a Key Vault secret identifier"),
        ("TOKEN=https://example.com/secrets/x", "not a Key Vault secret identifier"),
        (f"1BAD={VAULT}", "expected NAME=URI"),
        (VAULT, "expected NAME=URI"),
    ],
)
def test_bad_secret_never_echoes_a_value(raw: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        parse_secret(raw)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_http_url_is_one_line_with_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        _check(ws_url="http://agent.example.com/ws")
    assert "did you mean ws://agent.example.com/ws" in str(caught.value)


def test_plain_ws_needs_the_explicit_opt_in() -> None:
    with pytest.raises(ConfigError, match="is not wss://.*--allow-insecure-url"):
        _check(ws_url="ws://agent.example.com/ws")
    options, _ = _check(ws_url="ws://agent.example.com/ws", allow_insecure_url=True)
    assert options.ws_url == "ws://agent.example.com/ws"  # type: ignore[attr-defined]


def test_missing_target_is_refused() -> None:
    with pytest.raises(ConfigError, match="no target"):
        _check(ws_url="  ")


def test_loopback_target_warns_that_engines_cannot_reach_it() -> None:
    _, warnings = _check(ws_url="ws://127.0.0.1:8010/x", allow_insecure_url=True)
    assert any("loopback/private" in w for w in warnings)


@pytest.mark.parametrize("engines", [0, 401])
def test_engine_count_outside_alt_range(engines: int) -> None:
    with pytest.raises(ConfigError, match="1-400 engine instances"):
        _check(engines=engines)


def test_high_scale_and_idle_engines_warn() -> None:
    _, warnings = _check(engines=46, users=40)
    assert any("high scale" in w for w in warnings)
    assert any("idle" in w for w in warnings)


def test_callers_per_engine_over_the_assumed_capacity_warn_with_the_fix() -> None:
    cap = ASSUMED_CALLERS_PER_ENGINE
    _, warnings = _check(engines=2, users=2 * cap)
    assert not any("per engine" in w for w in warnings)
    _, warnings = _check(engines=2, users=2 * cap + 1)
    (warning,) = [w for w in warnings if "per engine" in w]
    assert f"{cap + 1} real-time callers per engine" in warning
    assert "assumed to carry" in warning and "--engines 3" in warning


@pytest.mark.parametrize(("field", "value"), [("users", 0), ("spawn_rate", 0.0)])
def test_no_load_is_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"--{field.replace('_', '-')}"):
        _check(**{field: value})


def test_long_runs_warn_about_the_default_quota() -> None:
    _, warnings = _check(duration="4h")
    assert any("over 3 h" in w for w in warnings)


def test_caller_knobs_are_validated_and_passed_through() -> None:
    options, _ = _check(knobs={"TURNS_PER_USER": "2", "BARGE_IN_RATE": "0.5"})
    assert options.knobs == (("BARGE_IN_RATE", "0.5"), ("TURNS_PER_USER", "2"))  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="BARGE_IN_RATE='2' is invalid"):
        _check(knobs={"BARGE_IN_RATE": "2"})


@pytest.mark.parametrize(
    "url", ["wss://agent.example.com/ws?api-key=abc", "wss://user:pw@agent.example.com/ws"]
)
def test_credentials_in_the_url_warn(url: str) -> None:
    _, warnings = _check(ws_url=url)
    assert any("carries credentials" in w for w in warnings)
    _, warnings = _check(ws_url="wss://agent.example.com/ws?lang=en")
    assert not any("credentials" in w for w in warnings)


def test_headers_in_clear_warn() -> None:
    _, warnings = _check(knobs={"WS_HEADERS": "X-Trace: 1"})
    assert any("WS_HEADERS is written into alt-config.yaml in clear" in w for w in warnings)


def test_secret_knob_must_come_from_key_vault() -> None:
    with pytest.raises(ConfigError, match="WS_AUTH_TOKEN is a secret.*--key-vault-secret"):
        _check(knobs={"WS_AUTH_TOKEN": "hunter2"})


def test_export_controlled_knobs_cannot_be_overridden() -> None:
    with pytest.raises(ConfigError, match="PCM_DIR cannot be passed"):
        _check(knobs={"PCM_DIR": "/tmp"})


def test_secret_clashing_with_an_env_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="given twice or is also an env value"):
        _check(secrets=(f"WS_URL={VAULT}",))
    with pytest.raises(ConfigError, match="given twice"):
        _check(secrets=(f"A={VAULT}", f"A={VAULT}"))


def test_identity_and_autostop_are_checked() -> None:
    with pytest.raises(ConfigError, match="user-assigned managed identity"):
        _check(key_vault_identity="my-identity")
    with pytest.raises(ConfigError, match="auto-stop"):
        _check(autostop=AutoStop(120, 60))
    with pytest.raises(ConfigError, match="display-name"):
        _check(display_name="x")
    with pytest.raises(ConfigError, match="description"):
        _check(description="d" * 101)


def test_config_document_in_documented_order_with_loads_as_env() -> None:
    options, _ = _check(
        test_id="voice-prod", engines=3, users=600, spawn_rate=2.5, duration="15m",
        knobs={"TURNS_PER_USER": "3"}, secrets=(f"WS_AUTH_TOKEN={VAULT}",),
        key_vault_identity=IDENTITY,
    )  # fmt: skip
    doc = config_document(
        options,  # type: ignore[arg-type]
        test_plan="locustfile.py",
        configuration_files=["requirements.txt", "manifest.jsonl"],
        zip_artifacts=["voice-audio-1.zip"],
        criteria=map_slo(DEFAULT_SLO),
    )
    assert list(doc)[:8] == [
        "version", "testId", "displayName", "description", "testType", "testPlan",
        "engineInstances", "configurationFiles",
    ]  # fmt: skip
    assert doc["testType"] == "Locust" and doc["engineInstances"] == 3
    env = {item["name"]: item["value"] for item in doc["env"]}
    assert env == {
        "WS_URL": URL, "PCM_DIR": "./", "LOCUST_USERS": "600", "LOCUST_SPAWN_RATE": "2.5",
        "LOCUST_RUN_TIME": "900", "LOCUST_STOP_TIMEOUT": "10", "METRICS_PORT": "0",
        "TURNS_PER_USER": "3",
    }  # fmt: skip
    assert all(isinstance(v, str) for v in env.values())
    assert doc["secrets"] == [{"name": "WS_AUTH_TOKEN", "value": VAULT}]
    assert doc["keyVaultReferenceIdentity"] == IDENTITY
    assert doc["zipArtifacts"] == ["voice-audio-1.zip"]
    assert doc["failureCriteria"]["clientMetrics"][0] == {"ttfb": "p95(response_time_ms) > 3000"}
    assert doc["autoStop"] == {"errorPercentage": 90, "timeWindow": 60}


def test_disabled_autostop_and_rendered_yaml_round_trip() -> None:
    options, _ = _check(autostop=None)
    doc = config_document(
        options,  # type: ignore[arg-type]
        test_plan="locustfile.py", configuration_files=[], zip_artifacts=[],
        criteria=map_slo(DEFAULT_SLO),
    )  # fmt: skip
    assert doc["autoStop"] == "disable" and "zipArtifacts" not in doc
    text = render_config(doc, generator="test")
    assert text.startswith("# Azure Load Testing test configuration, generated by test.")
    assert yaml.safe_load(text) == doc


def test_core_modules_import_without_gevent() -> None:
    code = (
        "import sys\n"
        "import loadtest.alt.limits, loadtest.alt.criteria, loadtest.alt.config\n"
        "import loadtest.alt.audio_plan\n"
        "assert 'gevent' not in sys.modules and 'locust' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
