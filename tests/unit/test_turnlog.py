"""The per-turn log (TURN_LOG): one JSON line per turn, with the ids the agent knows the call
by and every instant both as the caller host's monotonic clock and as wall-clock UTC."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadtest.conversation import TurnReport
from loadtest.conversation.measure import AnswerStats, BargeOutcome, BargeReport, TalkOver
from loadtest.errors import ConfigError
from loadtest.runtime.turnlog import CallIds, TurnLog, check_path, turn_record, utc

# 2026-01-02T03:04:05.000000Z on the wall clock is monotonic 1_000_000_000_000 here
WALL_NS = int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()) * 1_000_000_000
MONO_NS = 1_000_000_000_000
TWILIO = CallIds(
    call_id="0d6c6a52-5c1e-4a8f-9a51-6b1f0f5b2d10", correlation_id="corr-1",
    protocol="twilio", epoch_offset_ns=WALL_NS - MONO_NS,
    stream_sid="MZ0d6c6a525c1e4a8f9a516b1f0f5b2d10", call_sid="CA0d6c6a525c1e4a8f9a516b1f0f5b2d10",
)  # fmt: skip


def _report(barge: BargeReport | None = None, *, cut: bool = False) -> TurnReport:
    return TurnReport(
        index=1, scenario="quick_question", audio_key="q.pcm", barge_scheduled=barge is not None,
        started_ns=MONO_NS, speech_ns=MONO_NS + 200_000_000, eos_ns=MONO_NS + 2_260_000_000,
        ended_ns=MONO_NS + 5_000_000_000, ttfb_ms=700.25, failure=None, talk_over=TalkOver(),
        answer=AnswerStats(first_arrival_ns=MONO_NS + 2_960_250_000,
                           last_arrival_ns=MONO_NS + 4_000_000_000, frames=3, audio_ms=60.0,
                           gaps_ms=(20.0, 20.0)),
        barge=barge, cut=cut, speech_media_ms=2_200, eos_media_ms=4_260,
    )  # fmt: skip


def test_a_line_names_the_call_and_gives_each_instant_on_both_clocks() -> None:
    barge = BargeReport(
        outcome=BargeOutcome.STOPPED, interrupted_turn=0, started_ns=MONO_NS,
        speech_ns=MONO_NS + 200_000_000, decided_ns=MONO_NS + 410_500_000, latency_ms=210.5,
        audible_talk_over_ms=210.5, stop_arrival_ns=MONO_NS + 410_500_000,
        last_audio_ns=MONO_NS + 400_000_000,
    )  # fmt: skip
    record = json.loads(json.dumps(turn_record(TWILIO, _report(barge))))
    assert record == {
        "call_id": TWILIO.call_id, "connection_id": TWILIO.call_id, "correlation_id": "corr-1",
        "stream_sid": TWILIO.stream_sid, "call_sid": TWILIO.call_sid, "protocol": "twilio",
        "scenario": "quick_question", "turn_index": 1, "audio": "q.pcm",
        "started_ns": MONO_NS, "started_utc": "2026-01-02T03:04:05.000000Z",
        "speech_ns": MONO_NS + 200_000_000, "speech_utc": "2026-01-02T03:04:05.200000Z",
        "speech_media_ms": 2_200,
        "eos_ns": MONO_NS + 2_260_000_000, "eos_utc": "2026-01-02T03:04:07.260000Z",
        "eos_media_ms": 4_260,
        "answer_first_ns": MONO_NS + 2_960_250_000,
        "answer_first_utc": "2026-01-02T03:04:07.960250Z",
        "ended_ns": MONO_NS + 5_000_000_000, "ended_utc": "2026-01-02T03:04:10.000000Z",
        "ttfb_ms": 700.25, "failure": None, "cut": False,
        "barge": {
            "outcome": "stopped", "interrupted_turn": 0,
            "speech_ns": MONO_NS + 200_000_000, "speech_utc": "2026-01-02T03:04:05.200000Z",
            "stop_arrival_ns": MONO_NS + 410_500_000,
            "stop_arrival_utc": "2026-01-02T03:04:05.410500Z",
            "latency_ms": 210.5, "audible_talk_over_ms": 210.5,
        },
    }  # fmt: skip


def test_acs_calls_have_no_sids_and_missing_instants_are_null() -> None:
    acs = CallIds(call_id="c", correlation_id="r", protocol="acs", epoch_offset_ns=0)
    report = replace(_report(cut=True), answer=None, ttfb_ms=None)
    record = turn_record(acs, report)
    assert record["stream_sid"] is None and record["call_sid"] is None and record["cut"] is True
    assert record["answer_first_ns"] is None and record["answer_first_utc"] is None
    assert utc(None, 0) is None
    assert utc(1_500, 0) == "1970-01-01T00:00:00.000001Z"  # truncated to the microsecond


def test_lines_are_appended_in_batches_one_file_per_process(tmp_path: Path) -> None:
    log = TurnLog(str(tmp_path / "turns-{pid}.jsonl"))
    log.add(TWILIO, _report())
    log.add(TWILIO, _report(cut=True))
    log.flush()
    log.flush()  # nothing pending: no-op
    (path,) = tmp_path.glob("turns-*.jsonl")
    assert path.name == f"turns-{os.getpid()}.jsonl"
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert (first["cut"], second["cut"]) == (False, True)


def test_an_unwritable_log_is_said_once_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = TurnLog(str(tmp_path / "gone" / "turns.jsonl"))
    log.add(TWILIO, _report())
    log.flush()
    log.add(TWILIO, _report())
    log.flush()
    errors = [r for r in caplog.records if "cannot write the turn log" in r.getMessage()]
    assert len(errors) == 1


def test_a_bad_path_is_one_clear_line(tmp_path: Path) -> None:
    check_path(str(tmp_path / "turns-{pid}.jsonl"))  # fine
    with pytest.raises(ConfigError, match=r"TURN_LOG=.* folder .*missing.* does not exist"):
        check_path(str(tmp_path / "missing" / "turns.jsonl"))
    with pytest.raises(ConfigError, match="a folder, not a file name"):
        check_path(str(tmp_path))
