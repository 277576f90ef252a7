"""Which caller sockets have data to read (edge): one epoll set for the process's calls.

Every receiving connection (:meth:`WebSocketTransport.start_receiving`) registers its socket
and its read callback here, and the callback runs when the socket turns readable, from one
of two places:

* **gevent's hub**: the epoll set's own file descriptor is readable while any socket in it
  is, and one watcher on it runs :meth:`ReadReadiness.poll` — a callback per ready socket,
  as a watcher per socket would, in one event-loop callback;
* **the frame scheduler**, between two callers of a batch of sends (:meth:`poll`): one
  ``epoll_wait`` with a zero timeout, no event-loop iteration. A read that becomes ready
  while the scheduler sends is stamped a fraction of a millisecond later, not when the
  batch ends — that wait would be in every TTFB it ends — and without the cost of yielding
  to the hub that often (a loop iteration and two greenlet switches each time).

Where the platform has no epoll (macOS, Windows), each socket gets a watcher of its own from
gevent's loop and :meth:`poll` does nothing: reads are stamped when the scheduler yields.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Callable
from typing import Any

import gevent
from gevent import monkey

__all__ = ["ReadReadiness", "read_readiness"]

_MAX_EVENTS = 1024  # sockets delivered per poll; the rest are still ready at the next one


def _original_epoll() -> Any:
    """The OS epoll, which gevent's monkey-patching hides from ``select``; ``None`` if none."""
    try:
        return monkey.get_original("select", "epoll")()
    except (AttributeError, ImportError):  # pragma: no cover - not Linux
        return None


class ReadReadiness:
    """Read callbacks of many sockets, run when each socket is readable (level-triggered: a
    callback that leaves data unread is called again). Callbacks must not block."""

    def __init__(self, *, use_epoll: bool = True) -> None:
        self.hub = gevent.get_hub()
        self.pid = os.getpid()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._epoll = _original_epoll() if use_epoll else None
        self._watchers: dict[int, Any] = {}  # without epoll: one per socket
        if self._epoll is not None:
            # active only while a socket is watched, as a watcher per socket would be: an
            # idle process's event loop is not kept running by it
            self._watcher = self.hub.loop.io(self._epoll.fileno(), 1)

    @property
    def polls(self) -> bool:
        """Whether :meth:`poll` delivers anything (the platform has epoll)."""
        return self._epoll is not None

    def watch(self, fd: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` whenever ``fd`` is readable, until :meth:`unwatch`."""
        if self._epoll is None:
            watcher = self._watchers.get(fd)
            if watcher is None:
                watcher = self._watchers[fd] = self.hub.loop.io(fd, 1)
            watcher.start(callback)
            return
        with contextlib.suppress(FileExistsError):  # watched again after a pause
            self._epoll.register(fd, select.EPOLLIN)
        if not self._callbacks:
            self._watcher.start(self.poll)
        self._callbacks[fd] = callback

    def unwatch(self, fd: int, callback: Callable[[], None]) -> None:
        """Stop running ``callback`` for ``fd`` (idempotent). Call it before closing the
        socket: a number the OS has given to a new socket is then not touched."""
        if self._epoll is None:
            watcher = self._watchers.pop(fd, None)
            if watcher is not None:
                watcher.stop()
            return
        if self._callbacks.get(fd) != callback:
            return
        del self._callbacks[fd]
        with contextlib.suppress(OSError, ValueError):  # closed already: epoll dropped it
            self._epoll.unregister(fd)
        if not self._callbacks:
            self._watcher.stop()

    def poll(self) -> None:
        """Run the callback of every socket readable now; never waits."""
        if self._epoll is None:
            return
        callbacks = self._callbacks
        for fd, _ in self._epoll.poll(0, _MAX_EVENTS):
            callback = callbacks.get(fd)
            if callback is not None:
                try:
                    callback()
                except Exception:  # reported as the hub would; the other sockets still run,
                    self.hub.handle_error(callback, *sys.exc_info())  # and so does the caller


_readiness: ReadReadiness | None = None


def read_readiness() -> ReadReadiness:
    """This process's (this hub's) :class:`ReadReadiness`. A forked child gets its own: an
    epoll set shared with the parent would mix both processes' sockets."""
    global _readiness
    if (
        _readiness is None
        or _readiness.hub is not gevent.get_hub()
        or _readiness.pid != os.getpid()
    ):
        _readiness = ReadReadiness()
    return _readiness
