from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.errors import ConfigError
from loadtest.settings import SETTINGS, parse_number, parse_settings


def test_defaults_are_valid() -> None:
    settings = parse_settings({})
    assert settings.chunk_ms == 20 and settings.first_byte_timeout_ms == 5_000
    assert settings.pcm_dir == Path("audio_cache") and settings.ws_protocol == "acs"
    assert settings.seed is None and not settings.ws_insecure


def test_seed_compatible_names_parse() -> None:
    settings = parse_settings({
        "WS_URL": "wss://agent.example/api/v1/media/stream", "TURNS_PER_USER": "3",
        "CHUNKS_PER_TURN": "50", "FIRST_BYTE_TIMEOUT_SEC": "2.5", "BARGE_QUIET_MS": "300",
        "WS_IGNORE_CLOSE_EXCEPTIONS": "true", "RESPONSE_TOKENS": "Transcript, AgentText",
        "END_TOKENS": "call_end", "WS_HEADERS": "X-Team: voice; X-Env: staging", "SEED": "7",
        "SCENARIO_WEIGHTS": "quick_question=3,insurance_inquiry=1",
    })  # fmt: skip
    assert settings.turns_per_user == 3 and settings.first_byte_timeout_ms == 2500
    assert settings.response_tokens == ("transcript", "agenttext")
    assert settings.ws_headers == (("X-Team", "voice"), ("X-Env", "staging"))
    assert settings.scenario_weights == (("quick_question", 3.0), ("insurance_inquiry", 1.0))
    assert settings.ws_ignore_close_exceptions and settings.seed == 7


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("WS_URL", "http://localhost:8010/ws", "did you mean ws://localhost:8010/ws"),
        ("WS_URL", "localhost:8010", "expected ws://"),
        ("TURNS_PER_USER", "three", "TURNS_PER_USER='three' is invalid: expected a whole"),
        ("CHUNK_MS", "25", "allowed: 10, 20, 40"),
        ("FIRST_BYTE_TIMEOUT_SEC", "0", "expected a number > 0"),
        ("BARGE_IN_RATE", "1.5", "from 0 to 1"),
        ("WS_IGNORE_CLOSE_EXCEPTIONS", "maybe", "true/false"),
        ("GREETING", "shout", "allowed: wait, barge, off"),
        ("WS_HEADERS", "{bad json", "not a JSON object"),
        ("SEED", "x1", "SEED"),
        ("WS_CA_BUNDLE", "/nonexistent.pem", "file not found"),
    ],
)
def test_bad_values_name_variable_value_and_allowed(env: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_settings({env: value})
    assert str(info.value).startswith(env) or env in str(info.value)


def test_secret_token_is_not_in_repr() -> None:
    settings = parse_settings({"WS_AUTH_TOKEN": "s3cr3t-value"})
    assert settings.ws_auth_token == "s3cr3t-value"
    assert "s3cr3t" not in repr(settings)
    assert SETTINGS["WS_AUTH_TOKEN"].secret


def test_every_knob_has_a_cli_option_and_help() -> None:
    for knob in SETTINGS.values():
        assert knob.option.startswith("--") and knob.help
    assert SETTINGS["FIRST_BYTE_TIMEOUT_SEC"].option == "--first-byte-timeout-sec"


@pytest.mark.parametrize(("raw", "value"), [("0", 0.0), ("2.5", 2.5), (" 30 ", 30.0)])
def test_a_number_outside_the_knobs(raw: str, value: float) -> None:
    assert parse_number("METRICS_LINGER", raw, 0, 3600) == value


@pytest.mark.parametrize("raw", ["abc", "-1", "nan", "3601", ""])
def test_a_bad_number_outside_the_knobs_names_it(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_number("METRICS_LINGER", raw, 0, 3600)
    assert str(info.value) == (
        f"METRICS_LINGER={raw!r} is invalid: expected a number from 0 to 3600"
    )
