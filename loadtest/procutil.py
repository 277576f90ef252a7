"""Child-process helpers shared by ``voice-loadtest run`` and the benchmark (edge).

:func:`spawn_child` starts a child that cannot outlive the run and is not interrupted behind
its back: on Linux it gets ``PR_SET_PDEATHSIG`` (SIGTERM when the parent dies, even by
SIGKILL, so a killed run never leaves an agent simulator or a worker behind), its own process
group (a terminal's Ctrl-C reaches the run alone, which then stops the children in order: the
master first, so it can gather the workers' last measurements), and no terminal input
(a background process group that read the terminal would be stopped by SIGTTIN).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["free_port", "spawn_child", "stop_processes"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a child to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux for SIGTERM when the parent dies (``None`` elsewhere).

    libc is loaded here, in the parent: between ``fork`` and ``exec`` the child only calls.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    parent = os.getpid()

    def die_with_parent() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return die_with_parent


def spawn_child(command: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` as a child that dies with this process (see the module docstring)."""
    return subprocess.Popen(
        list(command),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        process_group=0,
        preexec_fn=_parent_death_signal(),  # safe: the run process starts no threads
    )


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
