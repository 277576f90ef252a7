"""HTTP Basic authentication for Locust's web UI, through Locust's own ``--web-login`` (edge).

Locust's ``--web-login`` puts Flask-Login's ``login_required`` on every route of the web UI and
its API, and leaves the login mechanism to the locustfile. This module supplies it: a request
is let in when its ``Authorization: Basic`` header carries the username and password of
``WEB_AUTH_USERNAME`` / ``WEB_AUTH_PASSWORD`` (environment only: in Kubernetes they come from a
Secret), anything else gets ``401`` with ``WWW-Authenticate: Basic``, so a browser asks for
them and ``curl -u`` or a script passes them. No session and no login form: every request
carries the credentials, which is what an ingress in front of the UI expects, and a scripted
client never has to follow a redirect to a login page. Comparisons take constant time.

``/metrics`` and ``/healthz`` are served on their own port by the exporter and are not
affected; keep that port inside the cluster.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loadtest.errors import ConfigError

__all__ = ["PASSWORD_ENV", "USERNAME_ENV", "BasicCredentials", "enable_basic_auth"]

USERNAME_ENV = "WEB_AUTH_USERNAME"
PASSWORD_ENV = "WEB_AUTH_PASSWORD"
_REALM = "voice-loadtest"


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """The one account of the web UI."""

    username: str
    password: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BasicCredentials:
        username, password = env.get(USERNAME_ENV, ""), env.get(PASSWORD_ENV, "")
        if not username or not password:
            raise ConfigError(
                f"--web-login needs {USERNAME_ENV} and {PASSWORD_ENV} in the environment "
                "(in Kubernetes: master.auth.existingSecret)"
            )
        if ":" in username:
            raise ConfigError(f"{USERNAME_ENV} must not contain ':' (HTTP Basic separator)")
        return cls(username, password)

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries these credentials."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        username, sep, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(username, self.username.encode())
        password_ok = hmac.compare_digest(password, self.password.encode())
        return bool(sep) and user_ok and password_ok


class _User:
    """Flask-Login's user interface for the one account."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, username: str) -> None:
        self.username = username

    def get_id(self) -> str:
        return self.username


def enable_basic_auth(web_ui: Any, env: Mapping[str, str] | None = None) -> BasicCredentials:
    """Make ``web_ui`` (Locust's ``WebUI`` started with ``--web-login``) accept HTTP Basic
    credentials from ``env`` (default ``os.environ``) and answer 401 otherwise.

    Raises :class:`ConfigError` when the credentials are missing or malformed.
    """
    from flask import Response

    credentials = BasicCredentials.from_env(os.environ if env is None else env)
    # Locust writes to the Flask session on every protected request; a per-process key is
    # enough because nothing is kept in it between requests.
    web_ui.app.secret_key = secrets.token_bytes(32)
    manager = web_ui.login_manager

    def _load(user_id: str) -> _User | None:
        return None  # no sessions: every request authenticates itself

    def _from_request(req: Any) -> _User | None:
        if credentials.accepts(req.headers.get("Authorization")):
            return _User(credentials.username)
        return None

    def _unauthorized() -> Response:
        return Response(
            "authentication required\n",
            status=401,
            headers={"WWW-Authenticate": f'Basic realm="{_REALM}", charset="UTF-8"'},
            mimetype="text/plain",
        )

    manager.user_loader(_load)
    manager.request_loader(_from_request)
    manager.unauthorized_handler(_unauthorized)
    return credentials
