"""The caller's opt-in per-turn log (VOICE_LOADTEST_TURN_LOG), the benchmark's data source."""

from __future__ import annotations

import json
from pathlib import Path

from loadtest.conversation import TurnReport
from loadtest.conversation.measure import (
    AnswerStats,
    BargeOutcome,
    BargeReport,
    TalkOver,
)
from loadtest.runtime.turnlog import TurnLog


def _report(index: int, barge: BargeReport | None = None) -> TurnReport:
    return TurnReport(
        index=index, scenario="quick_question", audio_key="q.pcm",
        barge_scheduled=barge is not None,
        started_ns=1_000, speech_ns=2_000, eos_ns=3_000, ended_ns=9_000, ttfb_ms=600.25,
        failure=None, talk_over=TalkOver(),
        answer=AnswerStats(first_arrival_ns=3_600, last_arrival_ns=5_000, frames=3, audio_ms=60.0,
                           gaps_ms=(20.0, 20.0)),
        barge=barge,
    )  # fmt: skip


def test_turn_log_lines_carry_what_the_benchmark_matches(tmp_path: Path) -> None:
    barge = BargeReport(
        outcome=BargeOutcome.STOPPED, interrupted_turn=0, started_ns=10_000, speech_ns=10_200,
        decided_ns=10_400, latency_ms=150.5, audible_talk_over_ms=150.5, stop_arrival_ns=10_400,
        last_audio_ns=10_300,
    )  # fmt: skip
    log = TurnLog(str(tmp_path / "turns-{pid}.jsonl"))
    log.add("call-1", _report(0))
    log.add("call-1", _report(1, barge))
    log.flush()
    log.flush()  # nothing pending: no-op
    (path,) = tmp_path.glob("turns-*.jsonl")
    assert path.name != "turns-{pid}.jsonl"
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first == {
        "connection_id": "call-1", "turn_index": 0, "scenario": "quick_question",
        "started_ns": 1_000, "speech_ns": 2_000, "eos_ns": 3_000, "answer_first_ns": 3_600,
        "ttfb_ms": 600.25, "failure": None, "barge": None,
    }  # fmt: skip
    assert second["barge"] == {
        "outcome": "stopped", "interrupted_turn": 0, "speech_ns": 10_200,
        "stop_arrival_ns": 10_400, "latency_ms": 150.5,
    }  # fmt: skip
