"""The per-worker frame scheduler (edge): one greenlet sends every caller's due frames.

A wake-up per frame per caller (a greenlet sleep each) is what limited a worker before; here
one greenlet keeps every caller's next deadline in a heap, sleeps until the earliest and
serves every caller due in that one wake-up. What a caller does when served (render, send,
measure) is its :class:`Stream`'s business (``loadtest/runtime/caller.py``).

:class:`FramePhases` places each new call's frames in the frame period so that every
wake-up finds about as many callers due.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

import gevent
from gevent.event import Event

__all__ = ["FramePhases", "FrameScheduler", "Stream"]

_BATCH_YIELD_NS = 2_000_000  # the scheduler lets the event loop run after this long sending
# How it lets it run: a timer, not sleep(0). gevent runs a sleep(0) waiter as a callback
# before it next polls for I/O, so the readiness callbacks would still wait for the batch.
_YIELD_S = 1e-6
# In between, it reads what is readable without yielding, this often (``poll_reads``): a read
# that waits for the batch is in every TTFB it ends, and a yield costs a loop iteration.
_POLL_READS_NS = 200_000
# The golden ratio's fractional part: the k-th call's phase is frac(k * _GOLDEN) of a period.
_GOLDEN = (5**0.5 - 1) / 2


class Stream(Protocol):
    """One call's sending side as the scheduler sees it."""

    done: Event
    error: BaseException | None

    def serve(self) -> int | None:
        """Send every due frame; the next deadline, or ``None`` when the stream is over."""
        ...

    def fail(self, exc: BaseException) -> None: ...


class FrameScheduler:
    """Sends every caller's due frames from one greenlet: one per worker process.

    :meth:`run` serves a new stream's first due frame(s) at once, from the calling (Locust
    user) greenlet, then hands the stream to the scheduler and blocks until the conversation
    is done. The scheduler greenlet sleeps (``gevent.sleep``, one timer) until the earliest
    deadline of all streams and serves each stream whose deadline has passed, in deadline
    order. A stream handed over is next due one frame later, never before the scheduler's own
    next wake-up, so it never needs waking early — except from idle (no streams). Lateness is
    still measured per frame (send instant − due instant): time spent serving other callers
    first is counted, never hidden. Inbound messages are read and stamped promptly meanwhile:
    every 0.2 ms of back-to-back sending the scheduler runs ``poll_reads`` (the read
    callbacks of the sockets readable now, without yielding), and every ~2 ms it yields for
    one event-loop iteration.
    """

    def __init__(self, poll_reads: Callable[[], None] | None = None) -> None:
        self._poll_reads = poll_reads
        self._heap: list[tuple[int, int, Stream]] = []
        self._order = itertools.count()
        self._idle = Event()  # set when a stream arrives while there is none
        self._greenlet: gevent.Greenlet | None = None

    def run(self, stream: Stream) -> None:
        """Serve ``stream`` until it is over; return then (re-raises a scheduler-side bug)."""
        deadline = stream.serve()
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._order), stream))
            if self._greenlet is None or self._greenlet.dead:
                self._greenlet = gevent.spawn(self._loop)
            self._idle.set()
            try:
                stream.done.wait()
            finally:
                stream.done.set()  # killed while waiting (Locust stopping the user): drop it
        # Raised, not kept: its traceback holds frames that hold the stream, so a stream that
        # kept it would be a reference cycle.
        error, stream.error = stream.error, None
        if error is not None:
            raise error

    def _loop(self) -> None:
        heap, idle, poll_reads = self._heap, self._idle, self._poll_reads
        while True:
            if not heap:
                idle.clear()
                idle.wait()
                continue
            delay_ns = heap[0][0] - time.monotonic_ns()
            if delay_ns > 0:
                gevent.sleep(delay_ns / 1e9)
                continue
            batch_started = polled = now = time.monotonic_ns()
            while heap and heap[0][0] <= now:
                self._serve_top()
                now = time.monotonic_ns()
                if now - batch_started > _BATCH_YIELD_NS:
                    gevent.sleep(_YIELD_S)  # one loop iteration: sockets polled, reads served
                    batch_started = polled = now = time.monotonic_ns()
                elif now - polled > _POLL_READS_NS and poll_reads is not None:
                    poll_reads()
                    polled = now = time.monotonic_ns()

    def _serve_top(self) -> None:
        stream = heapq.heappop(self._heap)[2]
        try:
            deadline = stream.serve()
        except Exception as exc:  # a bug in one call must not stop every other call
            stream.fail(exc)
            deadline = None
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._order), stream))


class FramePhases:
    """Where in the frame period each new call of a process starts: spread, not random.

    A worker's callers fall due at their own phase of the frame period, and each scheduler
    wake-up serves the callers whose phase has passed since the last one. Random phases (what
    real phones have) clump: by chance some milliseconds of the period hold many more callers
    than the average, and the callers served last in such a batch are late by all of it.
    Here the k-th call's phase is ``frac(k * 0.618…)`` of the period: the phases of any run of
    consecutive calls cut the period into gaps of at most three lengths (the three-gap
    theorem), so however calls come and go the load stays nearly even. To the agent a call's
    phase is as arbitrary as before.
    """

    def __init__(self) -> None:
        self._count = 0

    def next_start(self, now_ns: int, period_ns: int) -> int:
        """The first instant at or after ``now_ns`` on the next call's phase of ``period_ns``
        (phases are taken on the clock's own grid of periods, so they line up across calls)."""
        phase_ns = int((self._count * _GOLDEN) % 1.0 * period_ns)
        self._count += 1
        return now_ns + (phase_ns - now_ns) % period_ns
