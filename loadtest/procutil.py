"""Child-process helpers shared by ``voice-loadtest run`` and the benchmark (edge)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["free_port", "stop_processes"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a child to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_processes(processes: Sequence[subprocess.Popen[Any]], grace_s: float = 10.0) -> None:
    """SIGTERM each process still running, then SIGKILL what is left after ``grace_s``."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
