"""The frame scheduler on gevent's real event loop (edge): a long batch of due callers must
not keep inbound data unread — the receive side stamps arrival instants, and a read that
waits for the whole batch inflates every TTFB measured in it. Two ways: the scheduler yields
to the event loop every ~2 ms of sending, and in between it polls the callers' sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import gevent
import pytest
from gevent.event import Event

from loadtest.runtime.readiness import ReadReadiness
from loadtest.runtime.scheduler import FrameScheduler
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration]

_BUSY_NS = 500_000  # each caller's serve takes 0.5 ms of CPU


class _Stream:
    """What the scheduler needs of a stream besides :meth:`serve`."""

    def __init__(self) -> None:
        self.serves = 0
        self.done = Event()
        self.error: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self.done.set()


class _Busy(_Stream):
    """A stream due once more ``delay_ns`` after it starts, whose second serve is slow."""

    def __init__(self, order: list[str], due_ns: int, arrive: socket.socket) -> None:
        super().__init__()
        self.order = order
        self.arrive = arrive
        self.due_ns = due_ns

    def serve(self) -> int | None:
        self.serves += 1
        if self.serves == 1:
            return self.due_ns
        if "serve" not in self.order:
            self.arrive.send(b"x")  # inbound data arrives as the batch starts
        end = time.monotonic_ns() + _BUSY_NS
        while time.monotonic_ns() < end:
            pass
        self.order.append("serve")
        self.done.set()
        return None


def _long_batch(poll: bool) -> list[str]:
    """What happened, in order: 20 slow serves all due at once, and one inbound read —
    watched by the event loop alone, or also polled by the scheduler (``poll``)."""
    order: list[str] = []
    reader, writer = socket.socketpair()
    reader.setblocking(False)

    def on_readable() -> None:
        order.append("read")
        reader.recv(64)

    readiness = ReadReadiness(use_epoll=poll)
    readiness.watch(reader.fileno(), on_readable)
    try:
        scheduler = FrameScheduler(readiness.poll if poll else None)
        due_ns = time.monotonic_ns() + 20_000_000  # every caller due at once, 20 ms from now
        callers = [gevent.spawn(scheduler.run, _Busy(order, due_ns, writer)) for _ in range(20)]
        gevent.joinall(callers, timeout=10, raise_error=True)
    finally:
        readiness.unwatch(reader.fileno(), on_readable)
        reader.close()
        writer.close()
    return order


def test_a_long_batch_reads_sockets_between_sends() -> None:
    # In an interpreter of its own, as in a worker: the test process's hub carries whatever
    # earlier in-process tests left on it (watchers, greenlets), which is not a worker's loop.
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_scheduler"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    watched, polled = json.loads(done.stdout.strip().splitlines()[-1])
    for order in (watched, polled):
        assert order.count("serve") == 20 and order.count("read") == 1, order
    # data that arrived as 10 ms of sending began was read ~2 ms in, not after all of it
    assert watched.index("read") < 15, watched
    # and when the scheduler polls, after the first 0.5 ms serve
    assert polled.index("read") <= 2, polled


class _Failing(_Stream):
    """A stream whose second serve raises: a bug in one call."""

    def serve(self) -> int | None:
        self.serves += 1
        if self.serves == 1:
            return time.monotonic_ns()
        raise ValueError("a bug in one call")


def test_a_failing_stream_raises_in_its_caller_and_is_not_kept() -> None:
    stream = _Failing()
    with pytest.raises(ValueError, match="a bug in one call"):
        FrameScheduler().run(stream)
    # its traceback holds the scheduler's frame, which holds the stream: kept, a cycle
    assert stream.error is None


if __name__ == "__main__":
    print(json.dumps([_long_batch(poll=False), _long_batch(poll=True)]))
