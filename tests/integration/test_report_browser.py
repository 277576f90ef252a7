"""The HTML report opened by a real headless Chromium: it loads, draws every plot, and asks the
network for nothing.

Chromium runs with every request sent through a recording proxy on 127.0.0.1 (which answers
none of them), so anything the page tried to load would show up there. Chromium itself still
phones home for housekeeping (component updates, network time) despite the flags that
discourage it; those requests go to Google service hosts and are ignored. A control test
proves the proxy does see a page's own loads.

Skipped (with the reason) where ``/usr/bin/chromium`` is not installed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.metrics.report_cli import write_report
from tests.unit.test_report import ALL_PLOTS, minimal_summary, realistic_summary

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
# Chromium's own background traffic (component updater, network time, account services).
HOUSEKEEPING = re.compile(r"(^|\.)(google\.com|googleapis\.com|gvt1\.com|gstatic\.com)$")


class RecordingProxy:
    """Accepts proxy connections on 127.0.0.1, records each request line, answers nothing."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with client:
                client.settimeout(2)
                try:
                    head = client.recv(4096).decode("latin-1")
                except OSError:
                    head = "?"
            if head:  # a connection closed unused (Chromium pre-connects) requested nothing
                self.requests.append(head.split("\r\n", 1)[0])

    def hosts(self) -> set[str]:
        """Hosts of the recorded requests (``GET http://h/…`` or ``CONNECT h:443``)."""
        found = set()
        for line in self.requests:
            match = re.match(r"^[A-Z]+ (?:[a-z]+://)?([^/:\s]+)", line)
            found.add(match.group(1) if match else line)
        return found

    def page_hosts(self) -> set[str]:
        return {h for h in self.hosts() if not HOUSEKEEPING.search(h)}

    def close(self) -> None:
        self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() does not
        self._server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    recorder = RecordingProxy()
    yield recorder
    recorder.close()


def _chromium(
    tmp_path: Path, proxy: RecordingProxy, *args: str
) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
        f"--proxy-server=http://127.0.0.1:{proxy.port}", "--proxy-bypass-list=<-loopback>",
        "--enable-logging=stderr", "--v=0", *args,
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    # the report has no script: any console message means something failed to parse or load
    assert not re.findall(r"CONSOLE[(:]", result.stderr), result.stderr[-2000:]
    return result


def _report(tmp_path: Path, summary: dict[str, object]) -> Path:
    summary_path = tmp_path / "summary.json"
    summary_path.write_text(json.dumps(summary))
    return write_report(summary_path, tmp_path / "report.html")


def test_chromium_renders_every_plot_offline(tmp_path: Path, proxy: RecordingProxy) -> None:
    report = _report(tmp_path, realistic_summary())
    dom = _chromium(tmp_path, proxy, "--dump-dom", report.as_uri()).stdout
    for plot_id in ALL_PLOTS:
        assert f'id="{plot_id}"' in dom, plot_id
    assert dom.count("<svg") == 11
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # the target URL stayed text
    assert "<script" not in dom
    assert proxy.page_hosts() == set(), proxy.requests


def test_chromium_screenshot_of_minimal_report(tmp_path: Path, proxy: RecordingProxy) -> None:
    report = _report(tmp_path, minimal_summary())
    png = tmp_path / "report.png"
    _chromium(tmp_path, proxy, f"--screenshot={png}", "--window-size=1280,2000", report.as_uri())
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert proxy.page_hosts() == set(), proxy.requests


def test_control_the_proxy_sees_a_page_load(tmp_path: Path, proxy: RecordingProxy) -> None:
    page = tmp_path / "external.html"
    page.write_text('<!DOCTYPE html><img src="http://report-canary.test/x.png">')
    _chromium(tmp_path, proxy, "--dump-dom", page.as_uri())
    assert "report-canary.test" in proxy.page_hosts()
