"""Locust's ``--web-login`` with the harness's HTTP Basic login: a real master process refuses
the web UI and its API without the credentials (401 + ``WWW-Authenticate``) and serves them
with; ``/metrics`` stays on its own port, unaffected; missing credentials stop the master with
one line and exit code 2."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from loadtest.procutil import free_port
from loadtest.runtime.locust_main import LOCUSTFILE

pytestmark = [pytest.mark.integration]

ACCOUNT = ("ops", "correct horse: battery")


def _status(
    url: str, account: tuple[str, str] | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=data)
    if account is not None:
        token = base64.b64encode(":".join(account).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _master(env: dict[str, str], web_port: int, metrics_port: int) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master", "--web-login",
        "--web-host", "127.0.0.1", "--web-port", str(web_port), "--master-bind-host",
        "127.0.0.1", "--master-bind-port", str(free_port()), "--metrics-host", "127.0.0.1",
        "--metrics-port", str(metrics_port), "--host", "ws://127.0.0.1:9/ws",
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def master() -> Iterator[tuple[int, int]]:
    web, metrics = free_port(), free_port()
    env = {**os.environ, "WEB_AUTH_USERNAME": ACCOUNT[0], "WEB_AUTH_PASSWORD": ACCOUNT[1]}
    process = _master(env, web, metrics)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            _status(f"http://127.0.0.1:{web}/")
            break
        except OSError:
            time.sleep(0.3)
    yield web, metrics
    process.terminate()
    output = process.communicate(timeout=30)[0]
    assert ACCOUNT[1] not in output, "the password was logged"


def test_web_ui_and_api_need_the_credentials(master: tuple[int, int]) -> None:
    web, metrics = master
    for path in ("/", "/stats/requests", "/stats/report"):
        code, headers = _status(f"http://127.0.0.1:{web}{path}")
        assert code == 401, path
        assert headers["WWW-Authenticate"].startswith('Basic realm="voice-loadtest"'), path
        assert _status(f"http://127.0.0.1:{web}{path}", (ACCOUNT[0], "wrong"))[0] == 401, path
    swarm = b"user_count=1&spawn_rate=1"  # what starts a test: refused before it is parsed
    assert _status(f"http://127.0.0.1:{web}/swarm", data=swarm)[0] == 401
    assert _status(f"http://127.0.0.1:{web}/", ACCOUNT)[0] == 200
    assert _status(f"http://127.0.0.1:{web}/stats/requests", ACCOUNT)[0] == 200
    assert _status(f"http://127.0.0.1:{metrics}/healthz")[0] == 200  # probes need no login


def test_web_login_without_credentials_stops_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEB_AUTH_")}
    process = _master(env, free_port(), 0)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 2, output
    assert "--web-login needs WEB_AUTH_USERNAME and WEB_AUTH_PASSWORD" in output
    assert "Traceback" not in output
