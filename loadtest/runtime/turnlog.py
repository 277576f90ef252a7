"""The per-turn log (edge): ``TURN_LOG=FILE`` / ``--turn-log FILE``, one JSON line per turn.

Each line names the call the way the agent knows it (the upgrade's ``x-ms-call-connection-id``
and ``x-ms-call-correlation-id`` headers, Twilio's ``streamSid`` and ``callSid``), the
scenario and turn, and gives every instant twice: ``*_ns`` is ``time.monotonic_ns()`` on the
caller's host (exact differences; the same clock as an agent's on that host), ``*_utc`` the
wall-clock time in UTC (ISO 8601, µs; to join with an agent's logs on another host, as far as
the two hosts' clocks agree). The fields are listed in :func:`turn_record` and documented in
``docs/turn-log.md``.

Every turn has its line: those the run's end cut too (``"cut": true``), so each TTFB and
barge-in in the summary appears here exactly once. ``{pid}`` in the file name becomes the
process id (one file per worker); without it every process appends whole lines to one file.
Lines are formatted and written in batches of 32, by a spawned greenlet, when a worker ends
its calls and at exit — never inside the frame scheduler.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gevent

from loadtest.conversation import TurnReport
from loadtest.errors import ConfigError

__all__ = ["CallIds", "TurnLog", "check_path", "turn_record", "utc"]

_TURN_LOG_BATCH = 32
log = logging.getLogger("voice-loadtest")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CallIds:
    """How the agent knows one call, and the call's clock offset.

    ``epoch_offset_ns`` is ``time.time_ns() - time.monotonic_ns()`` taken when the call
    started: monotonic instants of the call become wall-clock instants with it.
    """

    call_id: str
    correlation_id: str
    protocol: str
    epoch_offset_ns: int
    stream_sid: str | None = None
    call_sid: str | None = None


def check_path(path: str) -> None:
    """Raise :class:`ConfigError` when ``TURN_LOG`` cannot name a file this process writes
    (checked where callers run, before the first call: the master writes no turn log)."""
    target = Path(path.replace("{pid}", str(os.getpid())))
    if target.is_dir():
        raise ConfigError(f"TURN_LOG={path!r} is invalid: a folder, not a file name")
    if not target.parent.is_dir():
        raise ConfigError(f"TURN_LOG={path!r} is invalid: folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise ConfigError(f"TURN_LOG={path!r} is invalid: folder {target.parent} is not writable")


def utc(monotonic_ns: int | None, epoch_offset_ns: int) -> str | None:
    """``monotonic_ns`` as an ISO 8601 UTC instant with microseconds (``…T12:00:00.123456Z``)."""
    if monotonic_ns is None:
        return None
    micros = (monotonic_ns + epoch_offset_ns) // 1_000
    instant = _EPOCH + timedelta(microseconds=micros)
    return instant.isoformat(timespec="microseconds").replace("+00:00", "Z")


def turn_record(ids: CallIds, report: TurnReport) -> dict[str, Any]:
    """One line of the log (key order is the documented order)."""
    offset = ids.epoch_offset_ns

    def instant(name: str, value: int | None) -> dict[str, Any]:
        return {f"{name}_ns": value, f"{name}_utc": utc(value, offset)}

    barge = report.barge
    answer_first = None if report.answer is None else report.answer.first_arrival_ns
    record: dict[str, Any] = {
        "call_id": ids.call_id,
        "connection_id": ids.call_id,
        "correlation_id": ids.correlation_id,
        "stream_sid": ids.stream_sid,
        "call_sid": ids.call_sid,
        "protocol": ids.protocol,
        "scenario": report.scenario,
        "turn_index": report.index,
        "audio": report.audio_key,
        **instant("started", report.started_ns),
        **instant("speech", report.speech_ns),
        "speech_media_ms": report.speech_media_ms,
        **instant("eos", report.eos_ns),
        "eos_media_ms": report.eos_media_ms,
        **instant("answer_first", answer_first),
        **instant("ended", report.ended_ns),
        "ttfb_ms": report.ttfb_ms,
        "failure": None if report.failure is None else report.failure.value,
        "cut": report.cut,
        "barge": None,
    }
    if barge is not None:
        record["barge"] = {
            "outcome": barge.outcome.value,
            "interrupted_turn": barge.interrupted_turn,
            **instant("speech", barge.speech_ns),
            **instant("stop_arrival", barge.stop_arrival_ns),
            "latency_ms": barge.latency_ms,
            "audible_talk_over_ms": barge.audible_talk_over_ms,
        }
    return record


class TurnLog:
    """The per-turn JSONL file of this process (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path.replace("{pid}", str(os.getpid()))
        self._rows: list[tuple[CallIds, TurnReport]] = []
        self._failed = False  # a write failed: said once, the run goes on without the log
        atexit.register(self.flush)

    def add(self, ids: CallIds, report: TurnReport) -> None:
        self._rows.append((ids, report))
        if len(self._rows) >= _TURN_LOG_BATCH:
            gevent.spawn(self.flush)

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows or self._failed:
            return
        text = "".join(json.dumps(turn_record(ids, report)) + "\n" for ids, report in rows)
        data = text.encode("utf-8")
        try:
            # One O_APPEND write per batch: processes sharing one file never interleave lines.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                while data:
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
        except OSError as exc:
            self._failed = True
            log.error("voice-loadtest: cannot write the turn log %s: %s", self.path, exc.strerror)
