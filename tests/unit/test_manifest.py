from __future__ import annotations

import json

import pytest

from loadtest.audio.manifest import (
    REQUIRED_FIELDS,
    ManifestEntry,
    cache_filename,
    content_hash,
    parse_line,
    parse_manifest,
    to_line,
)
from loadtest.errors import ManifestError


def _entry(**overrides: object) -> ManifestEntry:
    fields: dict[str, object] = dict(
        filename="quick_question_turn_1_of_3_abc.pcm", text="Hi", voice="en-us",
        engine="espeak", sample_rate=16000, duration_seconds=1.2, speech_start_ms=200,
        speech_end_ms=1000, scenario="quick_question", turn_index=1, turn_count=3,
        hash="abc", sha256="0" * 64, created_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip
    fields.update(overrides)
    return ManifestEntry(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    entry = _entry(rate=1.25, style="chat")
    line = to_line(entry)
    record = json.loads(line)
    assert set(REQUIRED_FIELDS) <= set(record)
    assert "legacy" not in record
    assert parse_line(line, where="m:1") == entry


def test_legacy_line_is_read_with_unknown_bounds() -> None:
    line = json.dumps({
        "filename": "quick-question-turn-2-of-2_fed.pcm", "path": "x", "text": "Can you",
        "voice": "en-US-JennyMultilingualNeural", "sample_rate": 16000, "style": "chat",
        "rate": "+10%", "duration_seconds": 2.2, "label": "quick_question-turn-2-of-2",
        "scenario": "quick_question", "turn_index": 2, "turn_count": 2,
        "created_at": "2025-09-01T22:08:01Z", "hash": "fed",
    })  # fmt: skip
    entry = parse_line(line, where="m:1")
    assert entry.legacy and entry.speech_end_ms is None and entry.sha256 is None
    assert entry.turn_index == 2 and entry.turn_count == 0  # legacy turn_count is the index
    assert entry.rate == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "m:7: not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"filename": "a.pcm", "engine": "espeak"}), "missing required field"),
        (json.dumps({"text": "legacy without filename"}), "missing required field"),
    ],
)
def test_bad_lines_name_the_place(line: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_line(line, where="m:7")


def test_mistyped_and_impossible_values() -> None:
    record = json.loads(to_line(_entry()))
    with pytest.raises(ManifestError, match="'sample_rate' must be int"):
        parse_line(json.dumps({**record, "sample_rate": "16000"}), where="m:1")
    with pytest.raises(ManifestError, match="sample_rate 44100"):
        parse_line(json.dumps({**record, "sample_rate": 44100}), where="m:1")
    with pytest.raises(ManifestError, match="invalid"):
        parse_line(json.dumps({**record, "speech_start_ms": 900, "speech_end_ms": 100}), where="m")


def test_parse_manifest_skips_blank_lines_and_counts_lines() -> None:
    text = to_line(_entry()) + "\n\n" + "oops\n"
    with pytest.raises(ManifestError, match="m.jsonl:3"):
        parse_manifest(text, source="m.jsonl")


def test_hash_changes_with_each_input_and_names_follow_pattern() -> None:
    base = content_hash("Hi", "en-us", "espeak", 1.0, None)
    assert base == content_hash("Hi", "en-us", "espeak", 1.0, None)
    others = {
        content_hash("Hi!", "en-us", "espeak", 1.0, None),
        content_hash("Hi", "en-gb", "espeak", 1.0, None),
        content_hash("Hi", "en-us", "azure", 1.0, None),
        content_hash("Hi", "en-us", "espeak", 1.1, None),
        content_hash("Hi", "en-us", "espeak", 1.0, "chat"),
    }
    assert base not in others and len(others) == 5
    assert cache_filename("quick_question", 2, 3, base) == f"quick_question_turn_2_of_3_{base}.pcm"
