"""The simulator's two event-loop shortcuts: direct message delivery and shared pacing timers.

:class:`DirectConnection` is websockets' ``ServerConnection`` with a faster way in for data
messages: once the connection is open, its bytes go through
:class:`~loadtest.protocols.wsframes.FrameCutter` and each message is handed to the call's
callback with the ``time.monotonic_ns()`` its bytes came off the socket: ``data_received``
only stamps the read, and the reads are handled together once every read of the event-loop
iteration has its stamp (:class:`_Reads`). Control frames and anything unusual go to
websockets as before (see :mod:`loadtest.protocols.wsframes`), and messages that websockets
delivers reach the handler's ``async for`` loop, so both paths feed the same callback.

:class:`Pacer` wakes calls at their deadlines with one event-loop timer per millisecond that
has any — instead of one timer per call and reply frame (at 1,000 calls, 50,000 timers a
second). A call is woken at the first whole millisecond at or after its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode
from websockets.protocol import State

from loadtest.protocols.wsframes import Control, FrameCutter, Message

__all__ = ["DirectConnection", "Pacer", "Sleeper"]

log = logging.getLogger("loadtest.agent_sim")

Sink = Callable[[Message, int], None]
"""Takes one caller message and the ``time.monotonic_ns()`` it was read at."""


class DirectConnection(ServerConnection):
    """A server connection that hands data messages to :meth:`deliver_to`'s callback directly.

    Messages that arrive before the handler attached its callback are kept (with their
    receive times) and delivered when it does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cutter: FrameCutter | None = None
        self._sink: Sink | None = None
        self._early: list[tuple[Message, int]] = []
        self._reads: _Reads | None = None  # this loop's reads, once the connection is open

    def deliver_to(self, sink: Sink) -> None:
        """Send every data message from now on (and those already waiting) to ``sink``."""
        self._sink = sink
        early, self._early = self._early, []
        for message, rx_ns in early:
            if self.protocol.state is State.OPEN:
                try:
                    sink(message, rx_ns)
                except Exception:
                    self.handler_failed()

    def data_received(self, data: bytes) -> None:
        reads = self._reads
        if reads is None:
            protocol = self.protocol
            if protocol.state is not State.OPEN:  # the handshake: websockets' business
                super().data_received(data)
                return
            # websockets' parser must be at a frame boundary to share the stream with us.
            self._cutter = FrameCutter(
                protocol.max_message_size, passthrough=bool(protocol.reader.buffer)
            )
            reads = self._reads = _reads_of(self.loop)
        reads.add(self, data, time.monotonic_ns())

    def eof_received(self) -> None:
        _reads_of(self.loop).handle()  # the data read before the end comes first
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        _reads_of(self.loop).handle()
        super().connection_lost(exc)

    def take(self, data: bytes, rx_ns: int) -> None:
        """Bytes read at ``rx_ns``: cut into frames, data messages to the sink, the rest to
        websockets."""
        cutter = self._cutter
        assert cutter is not None
        items, rest = cutter.feed(data)
        sink = self._sink
        for item in items:
            if isinstance(item, Control):
                super().data_received(item.raw)
            elif sink is None:
                self._early.append((item, rx_ns))
            elif self.protocol.state is State.OPEN:  # what follows a close frame is not read
                try:  # (inline, not a helper: this runs for every caller frame)
                    sink(item, rx_ns)
                except Exception:
                    self.handler_failed()
        if rest:
            super().data_received(rest)

    def handler_failed(self) -> None:
        """A bug in the call's logic must not take the server down: close this call (1011)."""
        log.exception("call handler failed on a message; closing with 1011")
        with contextlib.suppress(Exception):  # the call may have closed or aborted already
            self.protocol.fail(CloseCode.INTERNAL_ERROR, "internal error")
            self.send_data()
        self.transport.close()


class _Reads:
    """Reads stamped, not yet handled: one loop's, handled in the loop's next iteration.

    When many connections are readable in one iteration, asyncio reads them one after the
    other; a read stamped only after the previous one was handled (cut, given to the call,
    its audio gated) would be late by all of them, and the stamp is the ground truth. So a
    read is stamped and queued, and the queue is handled, oldest first, once every read of
    the iteration has its stamp."""

    __slots__ = ("loop", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[tuple[DirectConnection, bytes, int]] = []

    def add(self, connection: DirectConnection, data: bytes, rx_ns: int) -> None:
        if not self.pending:
            self.loop.call_soon(self.handle)
        self.pending.append((connection, data, rx_ns))

    def handle(self) -> None:
        pending, self.pending = self.pending, []
        for connection, data, rx_ns in pending:
            try:
                connection.take(data, rx_ns)
            except Exception:  # as asyncio would for a data_received that raised: this
                connection.handler_failed()  # connection ends, the others' reads still count


_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Reads] = weakref.WeakKeyDictionary()


def _reads_of(loop: asyncio.AbstractEventLoop) -> _Reads:
    reads = _reads.get(loop)
    if reads is None:
        reads = _reads[loop] = _Reads(loop)
    return reads


class Sleeper(Protocol):
    """What :class:`Pacer` wakes: ``slot`` is the millisecond it waits for (``None``: none)."""

    slot: int | None

    def on_timer(self) -> None: ...


class Pacer:
    """Shared wake-up timers on a 1 ms grid (see the module docstring)."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: dict[int, list[Sleeper]] = {}

    def wake(self, sleeper: Sleeper, deadline_ns: int) -> None:
        """Call ``sleeper.on_timer()`` at ``deadline_ns`` (rounded up to the millisecond).
        Replaces the sleeper's earlier wake-up; set ``sleeper.slot = None`` to cancel."""
        slot = -(-deadline_ns // 1_000_000)
        sleeper.slot = slot
        waiting = self._slots.get(slot)
        if waiting is not None:
            waiting.append(sleeper)
            return
        self._slots[slot] = [sleeper]
        delay_s = (slot * 1_000_000 - time.monotonic_ns()) / 1e9
        asyncio.get_running_loop().call_later(max(0.0, delay_s), self._fire, slot)

    def _fire(self, slot: int) -> None:
        for sleeper in self._slots.pop(slot):
            if sleeper.slot == slot:  # not rescheduled or cancelled since
                sleeper.slot = None
                try:
                    sleeper.on_timer()
                except Exception:  # one call's bug must not delay the others in this slot
                    log.exception("call timer failed")
