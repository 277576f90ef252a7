"""The opt-in per-turn log of the callers (edge): ``VOICE_LOADTEST_TURN_LOG=FILE``.

One JSON line per finished turn — connection id, turn, end-of-speech and answer instants,
TTFB, the barge-in — for checking the harness against an agent's own log (the benchmark
does). ``{pid}`` in the file name becomes the process id. Lines are formatted and written in
batches of 32, by a spawned greenlet and at exit, never inside the frame scheduler.
"""

from __future__ import annotations

import atexit
import json
import os
from typing import Any

import gevent

from loadtest.conversation import TurnReport

__all__ = ["TURN_LOG_ENV", "TurnLog"]

TURN_LOG_ENV = "VOICE_LOADTEST_TURN_LOG"
_TURN_LOG_BATCH = 32


class TurnLog:
    """The opt-in per-turn JSONL dump (see the module docstring); ``{pid}`` in ``path``
    becomes the process id."""

    def __init__(self, path: str) -> None:
        self.path = path.replace("{pid}", str(os.getpid()))
        self._rows: list[tuple[Any, ...]] = []
        atexit.register(self.flush)

    def add(self, call_id: str, report: TurnReport) -> None:
        self._rows.append((call_id, report))
        if len(self._rows) >= _TURN_LOG_BATCH:
            gevent.spawn(self.flush)

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        lines = [json.dumps(_turn_record(call_id, report)) + "\n" for call_id, report in rows]
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(lines))


def _turn_record(call_id: str, report: TurnReport) -> dict[str, Any]:
    barge = report.barge
    return {
        "connection_id": call_id,
        "turn_index": report.index,
        "scenario": report.scenario,
        "started_ns": report.started_ns,
        "speech_ns": report.speech_ns,
        "eos_ns": report.eos_ns,
        "answer_first_ns": None if report.answer is None else report.answer.first_arrival_ns,
        "ttfb_ms": report.ttfb_ms,
        "failure": None if report.failure is None else report.failure.value,
        "barge": None
        if barge is None
        else {
            "outcome": barge.outcome.value,
            "interrupted_turn": barge.interrupted_turn,
            "speech_ns": barge.speech_ns,
            "stop_arrival_ns": barge.stop_arrival_ns,
            "latency_ms": barge.latency_ms,
        },
    }
