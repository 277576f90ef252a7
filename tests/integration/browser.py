"""A real headless Chromium driven over the DevTools protocol (no Playwright, no network).

:class:`Browser` starts ``/usr/bin/chromium`` with a debugging port, connects to its page
over a WebSocket (websocket-client, already a dependency) and offers what the tests need:
``open(url)`` and ``wait_for(js)``, which evaluates a JavaScript expression in the page until
it returns something truthy. Every request Chromium would send beyond the loopback goes to a
:class:`~tests.integration.test_report_browser.RecordingProxy`, so a page that tried to load
anything from elsewhere is caught.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websocket

CHROMIUM = Path("/usr/bin/chromium")


class Browser:
    """One headless Chromium with one page; close it with :meth:`close`."""

    def __init__(self, profile: Path, proxy_port: int) -> None:
        if not CHROMIUM.exists():
            pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
        profile.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={profile}", "--remote-debugging-port=0",
                f"--proxy-server=http://127.0.0.1:{proxy_port}", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": str(profile)},
        )  # fmt: skip
        port = self._debugging_port(profile / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            pages = [t for t in json.load(reply) if t.get("type") == "page"]
        self._socket = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self._ids = itertools.count(1)

    def _debugging_port(self, marker: Path) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._process.returncode}")
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its debugging port within 60 s")

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        self._socket.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:  # events arrive in between; only our answer matters
            message = json.loads(self._socket.recv())
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def open(self, url: str) -> None:
        self._call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        result = self._call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            return None
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0) -> Any:
        """The first truthy value of ``expression`` in the page (fails after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise AssertionError(f"not true within {timeout_s} s: {expression}\npage: {text}")

    def close(self) -> None:
        self._socket.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
