"""The ground-truth JSONL log, written off the event loop (edge).

:meth:`GroundTruthWriter.write` only appends the record to a queue; a daemon thread turns
records into lines and writes them in batches, flushing at least every ``flush_interval_s``.
So serialising and disk I/O never delay a reply frame.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from loadtest.agent_sim.actions import TurnRecord
from loadtest.errors import ConfigError

__all__ = ["GroundTruthWriter"]

_STOP = object()


class GroundTruthWriter:
    """Append :class:`TurnRecord` lines to ``path`` (created/truncated on open)."""

    def __init__(self, path: Path, *, flush_interval_s: float = 0.5) -> None:
        try:
            self._file = path.open("w", encoding="utf-8", buffering=1 << 16)
        except OSError as exc:
            raise ConfigError(f"--ground-truth {path}: cannot write ({exc.strerror})") from exc
        self.path = path
        self.lines_written = 0
        self._interval_s = flush_interval_s
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ground-truth", daemon=True)
        self._thread.start()

    def write(self, record: TurnRecord) -> None:
        """Queue one record (cheap; safe from the event loop)."""
        self._queue.put(record)

    def close(self) -> None:
        """Write everything queued, flush and close the file (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self._interval_s)
                except queue.Empty:
                    self._file.flush()
                    continue
                batch = [item]
                while True:  # drain what is there, then write once
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                lines = [r.to_json() + "\n" for r in batch if isinstance(r, TurnRecord)]
                self._file.writelines(lines)
                self.lines_written += len(lines)
                if any(r is _STOP for r in batch):
                    return
        finally:
            self._file.close()
