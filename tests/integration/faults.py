"""Helpers of the fault suite: a `voice-loadtest run` in the background, its process tree,
small tmpfs mounts (a full or read-only disk), and a WebSocket agent that breaks the rules."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families


def start_run(
    reports: Path,
    cache: Path,
    *args: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[str]:
    """``voice-loadtest run`` in the background, output captured (read it with ``finish``)."""
    command = [
        sys.executable, "-m", "loadtest", "run", "--workers", str(workers),
        "--reports-dir", str(reports), "--pcm-dir", str(cache), "--greeting", "off",
        "--seed", "5", "--metrics-port", "0", *args,
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, cwd=cwd or reports.parent,
    )  # fmt: skip


def finish(run: subprocess.Popen[str], timeout_s: float) -> tuple[int, str, str]:
    """Wait for the run; its exit code, stdout and stderr (killed if it overstays)."""
    try:
        out, err = run.communicate(timeout=timeout_s)
    except BaseException:
        run.kill()
        run.communicate()
        raise
    return run.returncode, out, err


def summary_of(reports: Path) -> dict[str, Any]:
    return dict(json.loads((reports / "summary.json").read_text()))


def tree(pid: int) -> list[psutil.Process]:
    """``pid``'s descendants (not itself)."""
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def wait_for_children(pid: int, count: int, timeout_s: float = 30.0) -> list[psutil.Process]:
    """Wait until ``pid`` has ``count`` living descendants (the agent, master, workers), each
    running its own program: between fork and exec a child still shows the run's command line,
    and :func:`role` could not tell what it is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            children = [p for p in tree(pid) if p.is_running() and p.status() != "zombie"]
            started = [p for p in children if role(p) in ("agent", "master", "worker")]
        except psutil.NoSuchProcess:  # one ended while we looked: look again
            started = []
        if len(started) >= count:
            return children
        time.sleep(0.2)
    raise AssertionError(f"run {pid} did not start {count} children within {timeout_s} s")


def role(process: psutil.Process) -> str:
    """``agent``, ``master`` or ``worker`` from a child's command line."""
    line = " ".join(process.cmdline())
    if " agent " in f"{line} ":
        return "agent"
    return "worker" if "--worker" in line else "master" if "--master " in line else line


def wait_until_gone(processes: list[psutil.Process], timeout_s: float) -> float:
    """Seconds until every process exited (fails after ``timeout_s``)."""
    started = time.monotonic()
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    assert not alive, f"still running after {timeout_s} s: {[p.cmdline() for p in alive]}"
    return time.monotonic() - started


def wait_for_file(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout_s} s"
        time.sleep(0.2)


@contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs at ``path`` (needs root, as the docker tests do); unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the fault suite runs as root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path, leave_bytes: int = 0) -> None:
    """Fill the file system of ``folder`` until ``leave_bytes`` or less are free."""
    with (folder / "filler").open("ab") as handle:
        chunk = b"\0" * (1 << 20)
        try:
            while os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize > leave_bytes:
                handle.write(chunk[: max(4096, min(len(chunk), leave_bytes or len(chunk)))])
                handle.flush()
        except OSError:
            pass


def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.25)


def master_sample(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


# --------------------------------------------------------------------- a rule-breaking agent

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MISBEHAVIOURS = ("reserved_opcode", "oversized", "bad_utf8", "bad_close_code")


class RuleBreaker:
    """A WebSocket server on loopback that accepts the upgrade, reads the caller's frames and,
    once a call has sent ``after_frames`` of them (the run's probe sends none), breaks RFC 6455
    in one way per call, taking :data:`MISBEHAVIOURS` in turn. It records what each call
    broke and the close code the caller answered with (``closes``: misbehaviour → codes)."""

    def __init__(self, after_frames: int = 10) -> None:
        self.after_frames = after_frames
        self.closes: dict[str, list[int | None]] = {m: [] for m in MISBEHAVIOURS}
        self.sent_bytes = 0
        self._calls = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/media/stream"

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, suppress(OSError):
            self._call(conn)

    def _call(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _GUID.encode()).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        reader = _Frames(conn)
        frames = 0
        while frames < self.after_frames:
            opcode, _ = reader.next()
            if opcode is None or opcode == 0x8:
                return  # the probe (or a caller that left)
            frames += opcode in (0x1, 0x2)
        with self._lock:
            misbehaviour = MISBEHAVIOURS[self._calls % len(MISBEHAVIOURS)]
            self._calls += 1
        self._break(conn, misbehaviour)
        code = None
        while True:  # the caller's answer: a close frame with its code, or nothing
            opcode, payload = reader.next()
            if opcode is None:
                break
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                break
        with self._lock:
            self.closes[misbehaviour].append(code)

    def _break(self, conn: socket.socket, misbehaviour: str) -> None:
        if misbehaviour == "reserved_opcode":
            conn.sendall(bytes((0x83, 0)))
        elif misbehaviour == "bad_utf8":
            payload = b'{"kind":"AudioData","text":"\xff\xfe"}'
            conn.sendall(bytes((0x81, len(payload))) + payload)
        elif misbehaviour == "bad_close_code":
            conn.sendall(bytes((0x88, 2)) + (1005).to_bytes(2, "big"))
        else:  # a 16 MiB text message, really sent (until the caller hangs up), while the
            # caller's answer is read
            threading.Thread(target=self._send_oversized, args=(conn,), daemon=True).start()

    def _send_oversized(self, conn: socket.socket) -> None:
        size = 16 << 20
        chunk = b"a" * 65536
        with suppress(OSError):
            conn.sendall(bytes((0x81, 127)) + size.to_bytes(8, "big"))
            for _ in range(size // len(chunk)):
                conn.sendall(chunk)
                with self._lock:
                    self.sent_bytes += len(chunk)


class _Frames:
    """Masked client frames off a blocking socket: ``(opcode, payload)``, ``(None, b"")`` at
    the end of the stream."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._buffer = b""

    def _read(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            try:
                data = self._conn.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            self._buffer += data
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def next(self) -> tuple[int | None, bytes]:
        head = self._read(2)
        if head is None:
            return None, b""
        size = head[1] & 0x7F
        if size >= 126:
            extended = self._read(2 if size == 126 else 8)
            if extended is None:
                return None, b""
            size = int.from_bytes(extended, "big")
        key = self._read(4) if head[1] & 0x80 else b"\0\0\0\0"
        payload = self._read(size)
        if key is None or payload is None:
            return None, b""
        opcode = head[0] & 0x0F
        if opcode == 0x8:  # only a close frame's payload is read here
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return opcode, payload


def signal_all(processes: list[psutil.Process], signum: int) -> None:
    """Send ``signum`` to every process (as a terminal does to its foreground group)."""
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            process.send_signal(signum)


__all__ = [
    "MISBEHAVIOURS",
    "RuleBreaker",
    "fill",
    "finish",
    "master_sample",
    "role",
    "signal_all",
    "start_run",
    "summary_of",
    "tmpfs",
    "tree",
    "until",
    "wait_for_children",
    "wait_for_file",
    "wait_until_gone",
]
