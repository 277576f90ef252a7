"""Cold start (edge): a Locust process start until its first caller frame left, ± an audio pull.

*Without pull*: ``python -m locust -f <packaged locustfile> --headless -u 1`` against a running
agent, with the audio cache on disk. The clock starts right before the process is spawned;
the first frame's send instant comes from the caller's own per-turn log
(``TURN_LOG``, the ``started_ns`` of turn 0 — with ``GREETING=off`` the first
frame of the call). Both are ``time.monotonic_ns()``, one clock for every process on a Linux
host. So the figure covers interpreter and Locust start-up, loading and pre-encoding the audio
cache, the WebSocket upgrade and the opening messages.

*With pull*: first ``voice-loadtest audio pull`` of the same cache from Blob Storage (Azurite,
the Azure Storage emulator, when ``azurite-blob`` is installed) into an empty folder, then the
same start — what a pod does when its entrypoint pulls the audio.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import loadtest
from bench.procs import free_port, stop

__all__ = ["measure_cold_start"]

_LOCUSTFILE = Path(loadtest.__file__).resolve().parent / "locustfile.py"
"""The packaged locustfile, as ``voice-loadtest locust`` runs it."""
# The emulator's documented, public development account (not a secret).
_AZURITE_ACCOUNT = "devstoreaccount1"
_AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _first_frame_ns(turn_log: Path) -> int | None:
    if not turn_log.is_file():
        return None
    starts = [
        json.loads(line).get("started_ns") for line in turn_log.read_text().splitlines() if line
    ]
    valid = [int(s) for s in starts if s is not None]
    return min(valid) if valid else None


def _start_to_first_frame(url: str, pcm_dir: Path, work: Path, log: Path) -> float | None:
    turn_log = work / f"turns-{time.monotonic_ns()}.jsonl"
    env = dict(
        os.environ,
        PCM_DIR=str(pcm_dir),
        GREETING="off",
        TURNS_PER_USER="1",
        CHUNKS_PER_TURN="5",
        BARGE_IN_RATE="0",
        TURN_LOG=str(turn_log),
    )
    command = [
        sys.executable, "-m", "locust", "-f", str(_LOCUSTFILE), "--headless", "-u", "1",
        "-r", "1", "-t", "6s", "--host", url, "--metrics-port", "0", "--stop-timeout", "5",
    ]  # fmt: skip
    started = time.monotonic_ns()
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        stop([process])
    first = _first_frame_ns(turn_log)
    return None if first is None else (first - started) / 1e6


def _azurite(work: Path, log: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("azurite-blob")
    if binary is None:
        return None
    port = free_port()
    location = work / "azurite"
    location.mkdir()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
             str(location), "--silent", "--skipApiVersionCheck", "--loose"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                endpoint = f"http://127.0.0.1:{port}/{_AZURITE_ACCOUNT}"
                connection = (
                    f"DefaultEndpointsProtocol=http;AccountName={_AZURITE_ACCOUNT};"
                    f"AccountKey={_AZURITE_KEY};BlobEndpoint={endpoint};"
                )
                return process, connection
        except OSError:
            time.sleep(0.1)
    stop([process])
    return None


def _cli(args: list[str], env: dict[str, str], log: Path) -> float:
    started = time.monotonic_ns()
    with log.open("ab") as sink:
        subprocess.run(
            [sys.executable, "-m", "loadtest", *args],
            env=env, stdout=sink, stderr=subprocess.STDOUT, check=True, timeout=120,
        )  # fmt: skip
    return (time.monotonic_ns() - started) / 1e6


def _pull_supported() -> bool:
    try:
        import loadtest.storage.commands  # noqa: F401
    except ImportError:
        return False
    return True


def measure_cold_start(url: str, pcm_dir: Path, *, runs: int, log: Path) -> dict[str, Any]:
    """Cold-start figures in ms (median of ``runs``), JSON-ready."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        work = Path(tmp)
        plain = [_start_to_first_frame(url, pcm_dir, work, log) for _ in range(runs)]
        ok = [v for v in plain if v is not None]
        result["without_pull"] = {
            "runs_ms": [None if v is None else round(v, 1) for v in plain],
            "median_ms": round(median(ok), 1) if ok else None,
        }
        if not _pull_supported():
            result["with_pull"] = {"skipped": "`voice-loadtest audio pull` is not available"}
            return result
        server = _azurite(work, log)
        if server is None:
            result["with_pull"] = {"skipped": "no Blob Storage: azurite-blob is not installed"}
            return result
        process, connection = server
        try:
            env = dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=connection)
            env["AUDIO_BLOB_CONTAINER"] = "bench-audio"
            _cli(["audio", "push", str(pcm_dir), "--create-container"], env, log)
            pulls, totals = [], []
            for index in range(runs):
                target = work / f"pulled-{index}"
                pull_ms = _cli(["audio", "pull", str(target)], env, log)
                start_ms = _start_to_first_frame(url, target, work, log)
                pulls.append(round(pull_ms, 1))
                totals.append(None if start_ms is None else round(pull_ms + start_ms, 1))
            ok = [v for v in totals if v is not None]
            result["with_pull"] = {
                "store": "Azurite (local Blob Storage emulator)",
                "pull_ms": pulls,
                "runs_ms": totals,
                "median_ms": round(median(ok), 1) if ok else None,
            }
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            result["with_pull"] = {"skipped": f"audio push/pull failed: {exc}"}
        finally:
            stop([process])
    return result
