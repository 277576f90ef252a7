"""Work-arounds for Locust behaviour that spoils a worker's timing or a run's ending (edge).

:func:`memoize_default_args` — a Locust worker that gets a *spawn* message (each step of a
ramp-up, and every rebalance when a worker joins or leaves) keeps those of the master's
options that are not Locust's own, testing each one against
``locust.argument_parser.default_args_dict()`` — which builds and parses Locust's whole
argument parser on every call. With the harness's options that is about a hundred parser
builds in a row (measured: a 0.1–0.35 s stall of the worker's event loop, found with gevent's
blocking monitor), during which no caller sends a frame: every call on that worker records
late frames and inflated TTFBs at the very moment an autoscaler adds a worker. Locust's own
arguments do not change while a process runs, so the answer is computed once.

:func:`idempotent_user_stop` — Locust raises "Tried to stop User in an unexpected state:
stopping. This should never happen." when a user already asked to stop is asked again; two
stop requests do meet when a worker is stopped from two sides at once (its own signal and
the master's quit), and each of its users then prints that traceback. A second request
changes nothing here: the user stops after its current task, as the first one asked.

:func:`quiet_csv_disk_errors` — when the reports' disk fills during a run, Locust's CSV
writer greenlet dies with a traceback and closing its files at exit prints another. Here
the first failure is one log line and the writer stops; the run and its summary go on. Its
writer also wakes, now and then, after Locust closed the files at exit (a traceback about a
closed file, seen with ``--metrics-linger``); that wake-up ends quietly too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from locust import argument_parser
from locust.stats import StatsCSVFileWriter
from locust.user.task import LOCUST_STATE_STOPPING
from locust.user.users import User

__all__ = ["idempotent_user_stop", "memoize_default_args", "quiet_csv_disk_errors"]

log = logging.getLogger("voice-loadtest")
_MARK = "_voice_loadtest_fix"
_CLOSED = "_voice_loadtest_closed"


def memoize_default_args() -> None:
    """Make ``default_args_dict()`` build Locust's parser once per process (idempotent).

    Each call still returns its own dict (a copy), as the original did.
    """
    current: Callable[[], dict[str, Any]] = argument_parser.default_args_dict
    if getattr(current, "_voice_loadtest_memoized", False):
        return
    once = functools.cache(current)

    @functools.wraps(current)
    def default_args_dict() -> dict[str, Any]:
        return dict(once())

    default_args_dict._voice_loadtest_memoized = True  # type: ignore[attr-defined]
    argument_parser.default_args_dict = default_args_dict


def idempotent_user_stop() -> None:
    """A graceful stop of a user that is already stopping is a no-op (idempotent)."""
    current: Callable[..., bool] = User.stop
    if getattr(current, _MARK, False):
        return

    @functools.wraps(current)
    def stop(self: User, force: bool = False) -> bool:
        if not force and self._state == LOCUST_STATE_STOPPING:
            return False  # it stops after its current task, as the first request asked
        return current(self, force)

    setattr(stop, _MARK, True)
    User.stop = stop  # type: ignore[method-assign]


def quiet_csv_disk_errors() -> None:
    """A CSV report that cannot be written is one log line, not two tracebacks (idempotent)."""
    writer: Callable[[StatsCSVFileWriter], None] = StatsCSVFileWriter.stats_writer
    if getattr(writer, _MARK, False):
        return

    @functools.wraps(writer)
    def stats_writer(self: StatsCSVFileWriter) -> None:
        try:
            writer(self)
        except OSError as exc:
            _csv_failed(self, exc)
        except ValueError:
            # Locust closes the files at exit and then yields (atexit), so the writer may
            # wake once more to closed files: nothing is lost, the last rows were flushed.
            if not getattr(self, _CLOSED, False):
                raise

    def close_files(self: StatsCSVFileWriter) -> None:
        setattr(self, _CLOSED, True)
        for handle in (
            self.requests_csv_filehandle,
            self.stats_history_csv_filehandle,
            self.failures_csv_filehandle,
            self.exceptions_csv_filehandle,
        ):
            try:
                handle.close()  # flushes; the file is closed even when that fails
            except OSError as exc:
                _csv_failed(self, exc)

    setattr(stats_writer, _MARK, True)
    StatsCSVFileWriter.stats_writer = stats_writer  # type: ignore[method-assign]
    StatsCSVFileWriter.close_files = close_files  # type: ignore[method-assign]


def _csv_failed(writer: StatsCSVFileWriter, exc: OSError) -> None:
    if not getattr(writer, _MARK, False):
        setattr(writer, _MARK, True)
        log.error(
            "voice-loadtest: cannot write the CSV reports under %s (%s); stopped writing them",
            writer.base_filepath,
            exc.strerror or exc,
        )
