"""Fixtures of the interop tests: a third-party voice agent in its own virtualenv, as a process.

The agent (``pipecat_agent.py``) runs on Pipecat from ``.venv-interop``, which
``scripts/deps/interop.sh`` builds from pinned requirements (``make test`` runs it through
``scripts/test-deps.sh``; the fixture runs it too, so these tests also work on their own).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

INTEROP_VENV = REPO_ROOT / ".venv-interop"
AGENT = Path(__file__).with_name("pipecat_agent.py")


@pytest.fixture(scope="session")
def interop_python() -> Path:
    """The interop virtualenv's interpreter (built or updated on first use)."""
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/deps/interop.sh")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    python = INTEROP_VENV / "bin" / "python"
    if done.returncode != 0 or not python.is_file():
        pytest.fail(f"scripts/deps/interop.sh failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return python


class PipecatAgent:
    """``pipecat_agent.py`` on 127.0.0.1 and a free port; its events and logs in ``workdir``."""

    def __init__(self, python: Path, workdir: Path, *args: str) -> None:
        self.events_path = workdir / "pipecat-events.jsonl"
        self.log_path = workdir / "pipecat.log"
        self.proc = subprocess.Popen(
            [str(python), str(AGENT), "--events", str(self.events_path),
             "--log", str(self.log_path), *args],
            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.stderr: list[str] = []
        self._stderr = threading.Thread(target=self._drain, daemon=True)
        self._stderr.start()
        self.port = 0
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120  # the first start compiles numba and loads ONNX
        for line in self.proc.stdout:
            if '"listening"' in line:
                self.port = int(json.loads(line)["port"])
                break
            if time.monotonic() > deadline:
                break
        if not self.port:
            self.stop()
            raise RuntimeError("the Pipecat agent did not start:\n" + "".join(self.stderr))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.events_path.read_text().splitlines() if line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def pipecat_agent(
    interop_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipecatAgent]:
    """The Pipecat agent: replies 300 ms after its own end of turn with 2.5 s of tone."""
    workdir = tmp_path_factory.mktemp("pipecat")
    agent = PipecatAgent(interop_python, workdir, "--reply-after-ms", "300", "--reply-ms", "2500")
    try:
        yield agent
    finally:
        agent.stop()
