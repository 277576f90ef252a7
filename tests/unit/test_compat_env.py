"""Every variable of the accelerator's load tests is honoured with its meaning or refused in
one line naming what to use instead — one test per variable."""

from __future__ import annotations

import pytest

from loadtest.compat_env import COMPAT_VARIABLES, translate_compat
from loadtest.errors import ConfigError
from loadtest.settings import SETTINGS, parse_settings

HONOURED = [
    # variable, value, what the settings then hold
    ("WS_MAX_SSL_FAILS", "4", "reconnect_max", 4),
    ("WS_RECONNECT_BACKOFF_BASE_SEC", "0.25", "reconnect_base_delay_ms", 250),
    ("WS_RECONNECT_BACKOFF_MAX_SEC", "3.0", "reconnect_max_delay_ms", 3000),
    ("BARGE_REENTRY_MS", "1500", "barge_after_ms", 1500),
    # the accelerator's own names, settings here too
    ("TURN_TIMEOUT_SEC", "15", "turn_timeout_ms", 15_000),
    ("PAUSE_BETWEEN_TURNS_SEC", "1.5", "pause_between_turns_ms", 1500),
    ("SAMPLE_RATE", "24000", "sample_rate", 24_000),
    ("WS_IGNORE_CLOSE_EXCEPTIONS", "true", "ws_ignore_close_exceptions", True),
    # the one value that is what this tool does anyway
    ("BYTES_PER_SAMPLE", "2", None, None),
    ("CHANNELS", "1", None, None),
]

REFUSED = [
    ("WS_RECONNECT_BACKOFF_FACTOR", "1.8", "RECONNECT_BASE_DELAY_MS"),
    ("BYTES_PER_SAMPLE", "1", "16-bit PCM"),
    ("CHANNELS", "2", "mono"),
    ("BARGE_CHUNKS", "20", "CHUNKS_PER_TURN"),
    ("TURN_DURATION_SEC", "60", "CHUNKS_PER_TURN"),
    ("MIN_CONVERSATION_DURATION_SEC", "60", "TURNS_PER_USER"),
    ("WS_OPERATION_TIMEOUT_SEC", "60", "FIRST_BYTE_TIMEOUT_SEC"),
]


@pytest.mark.parametrize(("name", "value", "field", "expected"), HONOURED)
def test_honoured_with_the_accelerators_meaning(
    name: str, value: str, field: str | None, expected: object
) -> None:
    settings = parse_settings({name: value})
    if field is not None:
        assert getattr(settings, field) == expected
    assert name in COMPAT_VARIABLES or name in SETTINGS


@pytest.mark.parametrize(("name", "value", "instead"), REFUSED)
def test_refused_in_one_line_saying_what_to_use(name: str, value: str, instead: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({name: value})
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{name}={value!r} is not supported")
    assert instead in message


def test_every_listed_variable_has_a_test() -> None:
    tested = {name for name, *_ in HONOURED} | {name for name, *_ in REFUSED}
    assert set(COMPAT_VARIABLES) <= tested


def test_a_variable_and_its_setting_must_agree() -> None:
    assert parse_settings({"WS_MAX_SSL_FAILS": "4", "RECONNECT_MAX": "4"}).reconnect_max == 4
    with pytest.raises(ConfigError, match="WS_MAX_SSL_FAILS='4' and RECONNECT_MAX='2' disagree"):
        parse_settings({"WS_MAX_SSL_FAILS": "4", "RECONNECT_MAX": "2"})


def test_a_bad_value_names_where_it_came_from() -> None:
    with pytest.raises(ConfigError, match=r"expected a number \(it sets RECONNECT_BASE_DELAY_MS"):
        parse_settings({"WS_RECONNECT_BACKOFF_BASE_SEC": "soon"})
    with pytest.raises(ConfigError, match=r"set from WS_MAX_SSL_FAILS='400'"):
        parse_settings({"WS_MAX_SSL_FAILS": "400"})


def test_turn_timeout_and_its_default() -> None:
    assert parse_settings({}).turn_timeout_ms is None  # 30 s, or the answer timeout if longer
    with pytest.raises(ConfigError, match="TURN_TIMEOUT_SEC='3' is invalid: must be >= FIRST_BYTE"):
        parse_settings({"TURN_TIMEOUT_SEC": "3", "FIRST_BYTE_TIMEOUT_SEC": "5"})


def test_translation_leaves_other_names_alone() -> None:
    out, origins = translate_compat({"WS_URL": "ws://x/y", "BARGE_REENTRY_MS": "900"})
    assert out == {"WS_URL": "ws://x/y", "BARGE_AFTER_MS": "900"}
    assert origins == {"BARGE_AFTER_MS": "BARGE_REENTRY_MS='900'"}
