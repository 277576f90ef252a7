"""Fixtures shared by integration tests (add yours below; keep each self-contained)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtest.procutil import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- Azurite (Azure Blob Storage emulator) -------------------------------------------------

AZURITE_ACCOUNT = "devstoreaccount1"
# The emulator's documented, public development key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class Azurite:
    """A running ``azurite-blob`` on 127.0.0.1:``port`` with data in ``location``."""

    process: subprocess.Popen[bytes]
    port: int
    location: Path

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def connection_string(self, key: str = AZURITE_KEY) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={self.account_url};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _azurite_binary() -> str:
    binary = shutil.which("azurite-blob")
    if binary is None:
        subprocess.run(["bash", str(REPO_ROOT / "scripts/deps/azurite.sh")], check=False)
        binary = shutil.which("azurite-blob")
    if binary is None:
        pytest.fail("azurite-blob not found and scripts/deps/azurite.sh could not install it")
    return binary


def start_azurite(location: Path, *, timeout_s: float = 30.0) -> Azurite:
    """Start ``azurite-blob`` on a free port and wait until it accepts connections."""
    port = free_port()
    location.mkdir(parents=True, exist_ok=True)
    log = (location / "azurite.log").open("wb")
    process = subprocess.Popen(
        [
            _azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--location", str(location), "--silent", "--skipApiVersionCheck", "--loose",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    server = Azurite(process, port, location)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (location / "azurite.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"azurite-blob exited with {process.returncode}: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    pytest.fail(f"azurite-blob did not listen on 127.0.0.1:{port} within {timeout_s} s")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session; tests isolate themselves with their own container."""
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture
def azurite_factory(tmp_path: Path) -> Iterator[Callable[[], Azurite]]:
    """Start private Azurite instances (for tests that stop the server); all stopped at end."""
    started: list[Azurite] = []

    def start() -> Azurite:
        server = start_azurite(tmp_path / f"azurite-{len(started)}")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- the reference agent simulator ---------------------------------------------------------


@contextlib.contextmanager
def running_agent(*args: str) -> Iterator[str]:
    """``voice-loadtest agent ARGS`` on a free port of 127.0.0.1; yields its WebSocket URL
    once ``/healthz`` answers, stops it at the end."""
    port = free_port()
    agent = subprocess.Popen(
        [sys.executable, "-m", "loadtest", "agent", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", *args],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if agent.poll() is not None:
                pytest.fail(f"the reference agent exited with {agent.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the reference agent did not become healthy within 30 s")
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}/api/v1/media/stream"
    finally:
        agent.terminate()
        agent.wait(timeout=10)
