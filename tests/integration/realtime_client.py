"""Test helpers: stream PCM to a real ACS WebSocket server in real time, and run the agent
simulator as a real process.

``CallScript`` lays out what a caller sends (speech files, silence) on the 20 ms grid and
remembers where each file's speech starts and ends (the same VAD bounds the audio generator
writes to the manifest). ``stream_call`` paces it on deadlines (frame k at t0 + k × 20 ms),
stamps each send with ``time.monotonic_ns()`` just before writing, and reads the agent's
messages continuously, stamping each as it is read. ``AgentProcess`` starts
``python -m loadtest.agent_sim`` on an ephemeral port and scrapes its metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from loadtest.audio.pcm import comfort_noise_frames, split_frames
from loadtest.audio.vad import speech_bounds
from loadtest.protocols import acs
from loadtest.protocols.base import Inbound, InboundKind, WireMessage

FRAME_MS = 20
FRAME_NS = FRAME_MS * 1_000_000
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CallScript:
    """What one caller sends: pre-encoded 20 ms frames and named frame indexes.

    ``marks[f"{name}.start"]`` is the first speech frame of the speech file added as
    ``name``, ``marks[f"{name}.end"]`` its last speech frame (end of speech = that frame's
    send time).
    """

    sample_rate: int = 16000
    frames: list[acs.PreEncodedFrame] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)

    def speech(self, pcm: bytes, name: str) -> CallScript:
        bounds = speech_bounds(pcm, self.sample_rate)
        base = len(self.frames)
        self.marks[f"{name}.start"] = base + bounds.start_ms // FRAME_MS
        self.marks[f"{name}.end"] = base + bounds.end_ms // FRAME_MS - 1
        self.frames.extend(
            acs.encode_frame(f) for f in split_frames(pcm, self.sample_rate, FRAME_MS)
        )
        return self

    def silence(self, duration_ms: int) -> CallScript:
        count = duration_ms // FRAME_MS
        noise = comfort_noise_frames(
            self.sample_rate, FRAME_MS, min(count, 50), seed=len(self.frames)
        )
        encoded = [acs.encode_frame(f) for f in noise]
        self.frames.extend(encoded[i % len(encoded)] for i in range(count))
        return self


@dataclass
class CallResult:
    """What one streamed call saw (all times ``time.monotonic_ns()``)."""

    send_ns: list[int] = field(default_factory=list)
    inbound: list[tuple[int, Inbound, WireMessage]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    error: BaseException | None = None

    def first(self, kind: InboundKind, after_ns: int = 0) -> int | None:
        """Receive time of the first message of ``kind`` read after ``after_ns``."""
        return next((t for t, m, _ in self.inbound if m.kind is kind and t > after_ns), None)

    def last(self, kind: InboundKind, before_ns: int) -> int | None:
        found = [t for t, m, _ in self.inbound if m.kind is kind and t < before_ns]
        return found[-1] if found else None

    def count(self, kind: InboundKind) -> int:
        return sum(1 for _, m, _ in self.inbound if m.kind is kind)

    def raw(self, kind: InboundKind) -> list[WireMessage]:
        return [raw for _, m, raw in self.inbound if m.kind is kind]


async def stream_call(
    url: str,
    script: CallScript,
    *,
    headers: dict[str, str] | None = None,
    before_metadata: Sequence[WireMessage] = (),
    after_metadata: Sequence[WireMessage | list[str]] = (),
    response_tokens: tuple[str, ...] = (),
    tail_ms: int = 0,
    start_delay_ms: int = 0,
) -> CallResult:
    """Connect, send metadata and ``script`` in real time, keep reading for ``tail_ms`` more,
    then close. Never raises for a connection the server closed; see ``close_code``. A list
    in ``after_metadata`` goes out as one message in fragments."""
    result = CallResult()
    await asyncio.sleep(start_delay_ms / 1000)
    try:
        async with connect(
            url, additional_headers=headers or {}, compression=None, max_size=None
        ) as ws:
            receiver = asyncio.create_task(_receive(ws, result, response_tokens))
            try:
                for message in before_metadata:
                    await ws.send(message)
                await ws.send(acs.encode_metadata(script.sample_rate))
                for message in after_metadata:
                    await ws.send(message)
                t0 = time.monotonic_ns() + FRAME_NS
                for k, frame in enumerate(script.frames):
                    delay_ns = t0 + k * FRAME_NS - time.monotonic_ns()
                    if delay_ns > 0:
                        await asyncio.sleep(delay_ns / 1e9)
                    text = frame.render(acs.iso_timestamp(time.time_ns()))
                    result.send_ns.append(time.monotonic_ns())
                    await ws.send(text)
                await asyncio.sleep(tail_ms / 1000)
            except ConnectionClosed:
                pass
            finally:
                await ws.close()
                await receiver
            result.close_code = ws.close_code
            result.close_reason = ws.close_reason or ""
    except (TimeoutError, OSError, ConnectionClosed) as exc:
        result.error = exc
    except Exception as exc:  # InvalidStatus and friends: recorded for the test to check
        result.error = exc
    return result


async def _receive(ws: object, result: CallResult, tokens: tuple[str, ...]) -> None:
    try:
        async for message in ws:  # type: ignore[attr-defined]
            now = time.monotonic_ns()
            result.inbound.append((now, acs.classify(message, tokens), message))
    except ConnectionClosed:
        pass


class AgentProcess:
    """``python -m loadtest.agent_sim`` on 127.0.0.1 with an ephemeral port (and metrics)."""

    def __init__(self, *args: str, ground_truth: Path | None = None) -> None:
        command = [sys.executable, "-m", "loadtest.agent_sim", "--port", "0", "--metrics-port", "0"]
        if ground_truth is not None:
            command += ["--ground-truth", str(ground_truth)]
        command += list(args)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        self.logs: list[dict[str, object]] = []
        self.raw_logs: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        self.metrics_port = 0
        self._reader = threading.Thread(target=self._read_logs, daemon=True)
        self._reader.start()
        if not self._ready.wait(30) or not self.port:
            self.proc.kill()
            raise RuntimeError("agent simulator did not start:\n" + "".join(self.raw_logs))

    def _read_logs(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw_logs.append(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            self.logs.append(entry)
            if entry.get("event") == "metrics":
                self.metrics_port = int(entry["port"])
            if entry.get("event") == "listening":
                self.port = int(entry["port"])
                self._ready.set()
        self._ready.set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/media/stream"

    def http_get(self, path: str, port: int | None = None) -> tuple[int, str]:
        import urllib.error

        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port or self.port}{path}", timeout=5
            ) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Scraped ``/metrics``: ``{(sample name, sorted labels): value}``."""
        return self._scrape()[0]

    def metrics_once_counted(
        self, name: str, timeout_s: float = 10.0, **labels: str
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """:meth:`metrics` once the sample ``name{labels}`` is non-zero (or ``timeout_s``
        passed): the agent counts a close when it reads it, which may be after the caller
        has already moved on."""
        key = (name, tuple(sorted(labels.items())))
        deadline = time.monotonic() + timeout_s
        while True:
            samples = self.metrics()
            if samples.get(key) or time.monotonic() > deadline:
                return samples
            time.sleep(0.05)

    def _scrape(self) -> tuple[dict[tuple[str, tuple[tuple[str, str], ...]], float], set[str]]:
        status, text = self.http_get("/metrics", self.metrics_port)
        assert status == 200
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        families = set()
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out, families

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value; 0 for a label set the family has not counted yet. A name no
        family exports fails (so an assertion on a misspelt metric cannot pass on the 0)."""
        samples, families = self._scrape()
        family = re.sub(r"_(total|count|sum|bucket|created)$", "", name)
        assert family in families or name in families, f"{name}: no such metric exported"
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, wait, return the exit code (logs are complete afterwards)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_ground_truth(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
