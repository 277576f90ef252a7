"""Where a worker's CPU goes at load (py-spy samples, grouped; core: pure + one edge call).

:func:`record` runs ``py-spy record --native --format raw`` against a running worker (when
py-spy is installed) and :func:`categorize` folds the sampled stacks into a few buckets — the
send and recv system calls, WebSocket framing, the conversation engine, inbound
classification, frame rendering, Locust, and the gevent hub / greenlet switching — so the
benchmark report can say what limits the next caller.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["CATEGORIES", "categorize", "record"]

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("send() system call", ("send (libc", "sendto (libc", "__send (libc", "sock_send")),
    ("recv() system call", ("recv (libc", "recvfrom (libc", "__recv (libc", "sock_recv")),
    (
        "WebSocket framing + masking",
        ("runtime/transport.py", "protocols/wsframes.py", "websockets/", "websocket/"),
    ),
    ("inbound classify (JSON)", ("protocols/acs/caller.py:classify", "json/", "_classify_audio")),
    ("frame render (timestamp)", ("render", "iso_timestamp")),
    ("conversation engine", ("loadtest/conversation/",)),
    ("measurements (histograms, events)", ("loadtest/metrics/", "_forward", "_sample")),
    ("scheduler + receiver (caller.py)", ("runtime/caller.py", "runtime/scheduler.py")),
    ("Locust", ("locust/",)),
    ("gevent hub, timers, greenlet switches", ("gevent", "greenlet", "libev", "epoll")),
)
"""Bucket name → substrings of a frame; the first bucket matched from the leaf up wins."""


def _bucket(frames: list[str]) -> str:
    for frame in reversed(frames):  # leaf first
        for name, needles in CATEGORIES:
            if any(needle in frame for needle in needles):
                return name
    return "other"


_IDLE = ("epoll_wait", "epoll_pwait", "select (libc", "poll (libc")


def categorize(raw: str) -> dict[str, Any]:
    """Share of busy samples per bucket (percent, largest first) from py-spy's raw format
    (``frame;frame;…;leaf count`` per line), plus the top leaf frames. Samples waiting in
    ``epoll_wait`` are idle time: counted apart (``idle_percent``), not in the shares."""
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if any(needle in frames[-1] for needle in _IDLE):
            idle += n
            continue
        total += n
        buckets[_bucket(frames)] += n
        leaf = frames[-1].split("/site-packages/")[-1].split("/loadtest/")[-1]
        leaves[leaf] += n
    if not total:
        return {"samples": 0, "idle_percent": None, "buckets": [], "top_leaves": []}
    return {
        "samples": total,
        "idle_percent": round(100 * idle / (idle + total), 1),
        "buckets": [[name, round(100 * n / total, 1)] for name, n in buckets.most_common()],
        "top_leaves": [[name, round(100 * n / total, 1)] for name, n in leaves.most_common(12)],
    }


def record(pid: int, seconds: float, out: Path, rate_hz: int = 100) -> str | None:
    """Sample ``pid`` for ``seconds``; the raw stacks, or ``None`` if py-spy is unavailable
    or not permitted to attach."""
    local = Path(sys.executable).parent / "py-spy"
    binary = str(local) if local.is_file() else shutil.which("py-spy")
    if binary is None:
        return None
    command = [
        binary, "record", "--native", "--rate", str(rate_hz),
        "--duration", str(round(seconds)), "--format", "raw", "--output", str(out),
        "--pid", str(pid),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not out.is_file():
        return None
    return out.read_text()
