"""The ground-truth JSONL writer (a thread; no event loop needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.agent_sim.actions import TurnKind, TurnRecord
from loadtest.agent_sim.ground_truth import GroundTruthWriter
from loadtest.errors import ConfigError


def record(index: int) -> TurnRecord:
    return TurnRecord(
        connection_id="c",
        correlation_id=None,
        kind=TurnKind.REPLY,
        turn_index=index,
        outcome="answered",
        first_speech_rx_ns=1_000,
        last_speech_rx_ns=2_000_000,
        speech_frames=10,
        latency_ms=800.0,
        stall_ms=0,
        endpoint_silence_ms=500,
        response_due_ns=802_000_000,
        response_first_tx_ns=802_000_000,
        response_last_tx_ns=900_000_000,
        response_frames_sent=5,
        response_frames_planned=5,
        barge_speech_rx_ns=None,
        barge_detected_ns=None,
        stop_tx_ns=None,
        barge_latency_ms=200,
        barge_mode="stop",
        fault=None,
        fault_tx_ns=None,
    )


def test_writes_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "gt.jsonl"
    writer = GroundTruthWriter(path, flush_interval_s=0.01)
    for i in range(100):
        writer.write(record(i))
    writer.close()
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["turn_index"] for line in lines] == list(range(100))
    assert lines[0]["response_latency_ms"] == 800.0 and lines[0]["stop_latency_ms"] is None
    assert writer.lines_written == 100


def test_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--ground-truth"):
        GroundTruthWriter(tmp_path / "missing" / "gt.jsonl")
