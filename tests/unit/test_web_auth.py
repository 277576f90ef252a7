"""HTTP Basic credentials of the web UI (the Flask wiring runs in test_web_auth_locust)."""

from __future__ import annotations

import base64

import pytest

from loadtest.errors import ConfigError
from loadtest.runtime.web_auth import BasicCredentials


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


CREDENTIALS = BasicCredentials("ops", "pa:ss wörd")


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (_basic("ops", "pa:ss wörd"), True),
        ("basic " + _basic("ops", "pa:ss wörd").split()[1], True),  # scheme is case-insensitive
        (_basic("ops", "pa:ss wörd!"), False),
        (_basic("ops", "pa:ss"), False),
        (_basic("Ops", "pa:ss wörd"), False),
        (_basic("", ""), False),
        ("Basic " + base64.b64encode(b"ops").decode(), False),  # no colon
        ("Basic !!!not-base64", False),
        ("Bearer " + _basic("ops", "pa:ss wörd").split()[1], False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_only_the_configured_account(header: str | None, accepted: bool) -> None:
    assert CREDENTIALS.accepts(header) is accepted


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "needs WEB_AUTH_USERNAME and WEB_AUTH_PASSWORD"),
        ({"WEB_AUTH_USERNAME": "ops"}, "needs WEB_AUTH_USERNAME and WEB_AUTH_PASSWORD"),
        ({"WEB_AUTH_USERNAME": "o:ps", "WEB_AUTH_PASSWORD": "x"}, "must not contain ':'"),
    ],
)
def test_missing_or_malformed_credentials_are_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BasicCredentials.from_env(env)


def test_password_never_shows_in_repr() -> None:
    env = {"WEB_AUTH_USERNAME": "ops", "WEB_AUTH_PASSWORD": "pw1"}
    shown = repr(BasicCredentials.from_env(env))
    assert "ops" in shown and "pw1" not in shown
