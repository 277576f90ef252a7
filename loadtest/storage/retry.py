"""How long a storage command keeps trying (core: clock, sleep and randomness are injected).

Left to itself, the Azure SDK retries an unreachable account for minutes (measured: 345 s for
``audio pull`` with Azurite down) and says nothing meanwhile. A :class:`RetryWindow` gives a
whole command one deadline (``--timeout``): every storage call that fails transiently is
retried after a full-jitter backoff (a wait drawn from 0 up to a ceiling that doubles from
0.5 s to 5 s), each retry announced in one line, until the deadline passes; then
:class:`~loadtest.errors.StorageUnreachable` (exit code 2). The window is shared by the
command's transfer threads, and so is the retry count the lines show.

Call order::

    window = RetryWindow(timeout_s, on_retry=print)
    result = window.run("download x.pcm", lambda: ..., transient=is_transient, describe=str)
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from loadtest.errors import ConfigError, StorageUnreachable

__all__ = ["DEFAULT_TIMEOUT_S", "RetryWindow"]

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 300.0
"""A few minutes: far more than a healthy transfer of an audio cache takes."""
_BASE_S, _CAP_S = 0.5, 5.0


class RetryWindow:
    """One deadline for a whole command's storage calls (thread-safe)."""

    def __init__(
        self,
        timeout_s: float,
        *,
        on_retry: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ConfigError(f"--timeout {timeout_s:g}: must be > 0 seconds")
        self.timeout_s = timeout_s
        self._on_retry = on_retry
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._deadline = clock() + timeout_s
        self._retries = 0
        self._lock = threading.Lock()

    @property
    def retries(self) -> int:
        """Retries announced so far, by every thread."""
        return self._retries

    def remaining_s(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def run(
        self,
        what: str,
        attempt: Callable[[], T],
        *,
        transient: Callable[[BaseException], bool],
        describe: Callable[[BaseException], str],
    ) -> T:
        """``attempt()``, retried while it fails ``transient``\\ ly and the window is open.

        A failure that is not transient propagates at once. Raises
        :class:`StorageUnreachable` naming ``what`` and the last failure when time is up.
        """
        failures = 0
        while True:
            try:
                return attempt()
            except Exception as exc:
                if not transient(exc):
                    raise
                failures += 1
                reason = describe(exc)
                remaining = self.remaining_s()
                if remaining <= 0:
                    raise StorageUnreachable(
                        f"{what}: {reason}; gave up when --timeout ({self.timeout_s:g} s) ran out"
                    ) from exc
                ceiling = min(_CAP_S, _BASE_S * 2 ** min(failures - 1, 16))
                delay = min(self._rng.uniform(0.0, ceiling), remaining)
                with self._lock:
                    self._retries += 1
                    count = self._retries
                self._on_retry(
                    f"Blob unreachable ({reason}), retry {count} in {delay:.1f} s "
                    f"(gives up in {remaining:.0f} s)"
                )
                self._sleep(delay)
