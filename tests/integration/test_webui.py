"""The Voice view, live, in a real headless Chromium: a real Locust master with its web UI and
two real workers drive callers at the agent simulator (600 ms), and the page shows the TTFB
the simulator was told to produce, live SLO statuses, and keeps itself up to date — directly
under Locust's --web-base-path, and through a reverse proxy that serves it under another path
prefix (as an ingress does). Locust's own UI shows the Voice tabs. Nothing is loaded from
beyond the loopback. With --web-login, the view's routes are closed without credentials."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loadtest.procutil import free_port, stop_processes
from loadtest.runtime.locust_main import LOCUSTFILE
from tests.integration.browser import Browser
from tests.integration.realtime_client import AgentProcess
from tests.integration.test_report_browser import RecordingProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LATENCY_MS = 600
BASE_PATH = "/voice-lt"
RUN_S = 30

_TTFB = """(() => {
  const row = [...document.querySelectorAll('#latency-table tbody tr')]
    .find(r => r.cells[0].textContent === 'TTFB');
  if (!row || row.cells[1].textContent === '0') return null;
  return {count: Number(row.cells[1].textContent.replace(/,/g, '')),
          p50: Number(row.cells[2].textContent.replace(/,/g, ''))};
})()"""
_SLO = """(() => {
  const rows = [...document.querySelectorAll('#slo-table tbody tr')];
  return rows.length ? Object.fromEntries(rows.map(r => [r.cells[0].textContent,
                                                         r.cells[3].textContent])) : null;
})()"""


def _locust_row(*first_cells: str) -> str:
    """JavaScript: the cells of the first row of Locust's table that starts with these."""
    return (
        "(() => { const want = " + json.dumps(list(first_cells)) + "; "
        "const rows = [...document.querySelectorAll('table tbody tr')]"
        ".map(r => [...r.cells].map(c => c.textContent)); "
        "return rows.find(r => want.every((w, i) => r[i] === w)) || null; })()"
    )


@dataclass
class LiveRun:
    web_port: int
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{BASE_PATH}{path}"

    def data(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url("/voice/data.json"), timeout=10) as reply:
            return dict(json.load(reply))


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory, espeak_cache_dir: Path) -> Iterator[LiveRun]:
    """A master with its web UI (autostarted, 30 s run, then the UI stays up) and 2 workers."""
    logs = tmp_path_factory.mktemp("webui")
    web_port, master_port = free_port(), free_port()
    with AgentProcess("--latency-ms", str(LATENCY_MS), "--barge-latency-ms", "150") as agent:
        env = {**os.environ, "PCM_DIR": str(espeak_cache_dir), "GREETING": "off",
               "CHUNKS_PER_TURN": "40", "BARGE_IN_RATE": "0.5", "SEED": "3"}  # fmt: skip
        locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
        log = (logs / "master.log").open("wb")
        master = subprocess.Popen(
            [*locust, "--master", "--web-host", "127.0.0.1", "--web-port", str(web_port),
             "--web-base-path", BASE_PATH, "--autostart", "-u", "6", "-r", "6",
             "-t", f"{RUN_S}s", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(master_port), "--host", agent.url,
             "--metrics-port", "0", "--summary-json", str(logs / "summary.json")],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()  # the child has its own copy
        workers = [
            subprocess.Popen(
                [
                    *locust,
                    "--worker",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    str(master_port),
                    "--metrics-port",
                    "0",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        run = LiveRun(web_port, env, [master, *workers])
        try:
            yield run
        finally:
            stop_processes([master, *workers])


def _wait_for_samples(run: LiveRun, minimum: int, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            data = run.data()
        except OSError:
            data = {}
        summary = data.get("summary", {})
        count = summary.get("metrics", {}).get("ttfb_ms", {}).get("count", 0)
        if summary and count >= minimum and (summary.get("timeline") or not minimum):
            return data
        time.sleep(0.5)
    raise AssertionError(f"fewer than {minimum} TTFB samples within {timeout_s} s")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[Browser, RecordingProxy]]:
    recorder = RecordingProxy()
    chromium = Browser(tmp_path / "profile", recorder.port)
    yield chromium, recorder
    chromium.close()
    recorder.close()


def test_voice_view_shows_the_agents_latency_live(
    live_run: LiveRun, browser: tuple[Browser, RecordingProxy]
) -> None:
    chromium, recorder = browser
    _wait_for_samples(live_run, minimum=0)  # the web UI answers; the run has just begun
    chromium.open(live_run.url("/voice"))
    chromium.wait_for("!!document.getElementById('latency-table')")
    before = chromium.evaluate(f"(() => {{ const t = {_TTFB}; return t ? t.count : 0; }})()")
    # live: the page fetches its fragment every few seconds, and the TTFB count it shows
    # grows while the callers talk (the page itself is never reloaded)
    shown = chromium.wait_for(
        f"(() => {{ const t = {_TTFB}; return t && t.count >= {before} + 6 ? t : null; }})()",
        timeout_s=40,
    )
    assert abs(shown["p50"] - LATENCY_MS) <= 20, shown
    assert chromium.evaluate("document.getElementById('live-status').textContent").startswith(
        "updated"
    )
    # the SLO table's statuses follow the run: turn success has one once turns have ended
    statuses = chromium.wait_for(
        f"(() => {{ const s = {_SLO}; return s && s.turn_success !== 'no data' ? s : null; }})()"
    )
    assert statuses["ttfb_p95_ms"] == "pass" and statuses["connection_success"] == "pass"
    assert statuses["turn_success"] in ("pass", "warn", "fail")
    for plot in ("plot-ttfb-percentiles-over-time", "plot-active-calls-over-time"):
        assert chromium.wait_for(f"!!document.getElementById('{plot}')"), plot
    assert len(live_run.data()["live"]["workers"]) == 2
    # Locust's own UI: the Voice tab's table, fed by its /stats/requests poll
    chromium.open(live_run.url("/?tab=voice"))
    ttfb = chromium.wait_for(_locust_row("ttfb_ms", "all"))
    assert abs(float(ttfb[3]) - LATENCY_MS) <= 20, ttfb
    chromium.open(live_run.url("/?tab=voice-slo"))
    assert chromium.wait_for(_locust_row("ttfb_p95_ms"))[3] == "pass"
    assert recorder.page_hosts() == set(), recorder.requests


class _PrefixProxy:
    """Serves ``/ingress/...`` from the master's ``BASE_PATH/...`` (an ingress rewrite) and
    records the paths asked for."""

    def __init__(self, upstream: str) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                if not self.path.startswith("/ingress/"):
                    self.send_error(404)
                    return
                target = upstream + self.path.removeprefix("/ingress")
                try:
                    with urllib.request.urlopen(target, timeout=10) as reply:
                        status, headers, body = reply.status, reply.headers, reply.read()
                except urllib.error.HTTPError as exc:
                    status, headers, body = exc.code, exc.headers, exc.read()
                self.send_response(status)
                for name in ("Content-Type", "Cache-Control"):
                    if headers.get(name):
                        self.send_header(name, headers[name])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_voice_view_through_a_path_prefix(
    live_run: LiveRun, browser: tuple[Browser, RecordingProxy]
) -> None:
    chromium, recorder = browser
    _wait_for_samples(live_run, minimum=6)
    proxy = _PrefixProxy(f"http://127.0.0.1:{live_run.web_port}{BASE_PATH}")
    try:
        chromium.open(f"http://127.0.0.1:{proxy.port}/ingress/voice")
        shown = chromium.wait_for(_TTFB)
        assert abs(shown["p50"] - LATENCY_MS) <= 20, shown
        assert chromium.wait_for(_SLO)["ttfb_p95_ms"] == "pass"
        # the page refreshes through the prefix: its relative fetch came back via the proxy
        chromium.wait_for(
            "document.getElementById('live-status').textContent.startsWith('updated')"
        )
        assert "/ingress/voice/fragment" in proxy.paths
        # every download link resolves under the prefix too
        for link in ("voice/table.csv", "voice/slo.csv", "voice/data.json"):
            with urllib.request.urlopen(
                f"http://127.0.0.1:{proxy.port}/ingress/{link}", timeout=10
            ) as reply:
                assert reply.status == 200 and reply.read()
        # Locust's own page loads its assets and the Voice tab through the prefix as well
        chromium.open(f"http://127.0.0.1:{proxy.port}/ingress/?tab=voice")
        chromium.wait_for(_locust_row("ttfb_ms", "all"))
        assert any(p.startswith("/ingress/assets/") for p in proxy.paths)
        # nothing escapes the prefix (the browser's own favicon probe aside)
        outside = [p for p in proxy.paths if not p.startswith("/ingress/")]
        assert set(outside) <= {"/favicon.ico"}, proxy.paths
    finally:
        proxy.close()
    assert recorder.page_hosts() == set(), recorder.requests


def test_voice_view_needs_the_login_when_locust_asks_for_one(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    port = free_port()
    env = {**os.environ, "PCM_DIR": str(espeak_cache_dir),
           "WEB_AUTH_USERNAME": "ops", "WEB_AUTH_PASSWORD": "a-long-test-password"}  # fmt: skip
    log = (tmp_path / "locust.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--web-login",
         "--web-host", "127.0.0.1", "--web-port", str(port), "--metrics-port", "0",
         "--host", "ws://127.0.0.1:9/"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)

    def get(path: str, login: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if login is not None:
            request.add_header(
                "Authorization", "Basic " + base64.b64encode(login.encode()).decode()
            )
        try:
            with opener.open(request, timeout=5) as reply:
                return reply.status, reply.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                locust_status, locust_body = get("/stats/requests")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "locust.log").read_text()
                time.sleep(0.3)
        # Locust's own data is closed (a redirect to its login, a 401 from the locustfile's
        # login, or its "auth exception" page when no login mechanism is configured) ...
        assert '"stats"' not in locust_body
        # ... and the Voice view's routes answer exactly as Locust's own do, with no data
        for path in ("/voice", "/voice/fragment", "/voice/data.json", "/voice/table.csv",
                     "/voice/slo.csv"):  # fmt: skip
            status, body = get(path)
            assert status == locust_status, (path, status, body[:200])
            assert "ttfb" not in body and "Voice view" not in body, path
            # a wrong password is no login either; the right one opens the view
            assert get(path, "ops:wrong")[0] == locust_status, path
            assert get(path, "ops:a-long-test-password")[0] == 200, path
    finally:
        stop_processes([process])
