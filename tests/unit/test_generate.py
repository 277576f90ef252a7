"""Generation pipeline with an in-memory TTS stand-in (the real espeak run is integration)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loadtest.audio.cache import inspect_cache, load_cache
from loadtest.audio.generate import GenerateOptions, frame_margin, generate_audio
from loadtest.audio.manifest import MANIFEST_NAME, REQUIRED_FIELDS
from loadtest.audio.pcm import duration_ms
from loadtest.audio.scenarios import BUILTIN_SCENARIOS, Scenario, Turn
from loadtest.errors import AudioFormatError, ConfigError, StorageError
from tests.signals import ToneEngine

SCENARIOS = list(BUILTIN_SCENARIOS.values())


def test_generates_every_turn_with_margins_and_bounds(tmp_path: Path) -> None:
    engine = ToneEngine(lead_ms=500, tail_ms=700)
    result = generate_audio(SCENARIOS, engine, GenerateOptions(out_dir=tmp_path))
    assert len(result.generated) == 8 and not result.reused
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    assert len(lines) == 8
    for line in lines:
        record = json.loads(line)
        assert set(REQUIRED_FIELDS) <= set(record)
        data = (tmp_path / record["filename"]).read_bytes()
        # Leading silence trimmed to 200 ms, trailing to 200 ms, on the 20 ms grid.
        assert record["speech_start_ms"] == 200
        assert record["speech_end_ms"] == round(duration_ms(data, 16000)) - 200
        assert record["filename"].startswith(f"{record['scenario']}_turn_{record['turn_index']}_")
    cache = load_cache(tmp_path)
    assert [c.entry.turn_index for c in cache.scenarios["insurance_inquiry"]] == [1, 2, 3, 4, 5]


def test_second_run_reuses_everything(tmp_path: Path) -> None:
    engine = ToneEngine()
    generate_audio(SCENARIOS, engine, GenerateOptions(out_dir=tmp_path))
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = generate_audio(SCENARIOS, engine, GenerateOptions(out_dir=tmp_path))
    assert len(again.reused) == 8 and not again.generated
    assert engine.calls == 8
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.pcm")} == {
        k: v for k, v in before.items() if k.endswith(".pcm")
    }


def test_corrupted_file_is_regenerated_and_force_regenerates_all(tmp_path: Path) -> None:
    engine = ToneEngine()
    first = generate_audio(SCENARIOS[1:], engine, GenerateOptions(out_dir=tmp_path))
    victim = tmp_path / first.generated[0]
    victim.write_bytes(victim.read_bytes()[:-2] + b"\x7f\x7f")
    again = generate_audio(SCENARIOS[1:], engine, GenerateOptions(out_dir=tmp_path))
    assert again.generated == [victim.name]
    forced = generate_audio(SCENARIOS[1:], engine, GenerateOptions(out_dir=tmp_path, force=True))
    assert len(forced.generated) == 3


def test_max_turns_and_other_scenarios_kept(tmp_path: Path) -> None:
    engine = ToneEngine()
    generate_audio(SCENARIOS, engine, GenerateOptions(out_dir=tmp_path))
    generate_audio(SCENARIOS[1:], engine, GenerateOptions(out_dir=tmp_path, max_turns=2))
    report = inspect_cache(tmp_path)
    assert not report.problems  # the dropped third turn's file is gone with its line
    names = sorted((c.entry.scenario, c.entry.turn_index) for c in report.clips)
    assert names.count(("insurance_inquiry", 5)) == 1
    assert [n for n in names if n[0] == "quick_question"] == [
        ("quick_question", 1),
        ("quick_question", 2),
    ]


def test_silent_tts_output_is_rejected_and_manifest_stays_consistent(tmp_path: Path) -> None:
    class Mute(ToneEngine):
        def synthesize(self, text: str, **kwargs: object) -> bytes:
            if "balance" in text:
                return bytes(32000)
            return super().synthesize(text, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(AudioFormatError, match="quick_question turn 2.*no speech"):
        generate_audio(SCENARIOS[1:], Mute(), GenerateOptions(out_dir=tmp_path))
    report = inspect_cache(tmp_path)
    assert not report.problems and len(report.clips) == 1


def test_unwritable_output_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StorageError, match="cannot create output folder"):
        generate_audio(SCENARIOS, ToneEngine(), GenerateOptions(out_dir=blocker / "sub"))
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(StorageError, match="cannot write"):
            generate_audio(SCENARIOS, ToneEngine(), GenerateOptions(out_dir=ro))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate": 44100}, "44100"),
        ({"max_turns": 0}, "max-turns"),
        ({"rate": 3.0}, "rate"),
        ({"lead_ms": 30}, "multiple of 20"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((ConfigError, AudioFormatError), match=message):
        GenerateOptions(out_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_frame_margin_pads_short_lead_with_silence() -> None:
    data = b"\x01\x00" * 1600  # 100 ms at 16 kHz
    out = frame_margin(data, 16000, 40, 80, 200, 200)
    assert len(out) == (200 + 40 + 200) * 32
    assert out[: 160 * 32] == bytes(160 * 32)  # 160 ms of padding before the original 40 ms


def test_per_turn_voice_and_rate_change_the_hash(tmp_path: Path) -> None:
    base = Scenario("s", (Turn("one two three"),))
    varied = Scenario("s", (Turn("one two three", voice="tone-b", rate=1.5),))
    a = generate_audio([base], ToneEngine(), GenerateOptions(out_dir=tmp_path))
    # Another voice for the same turn: the folder holds another cache, replaced only by force.
    b = generate_audio([varied], ToneEngine(), GenerateOptions(out_dir=tmp_path, force=True))
    assert a.generated != b.generated
    assert [p.name for p in tmp_path.glob("*.pcm")] == b.generated  # its own old file removed


# ------------------------------------------------------------------ another cache in --out


class OtherEngine(ToneEngine):
    """The stand-in under another engine name: a cache another engine made."""

    name = "other-tts"
    default_voice = "other-voice"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_cache_of_another_engine_is_refused_in_one_line_and_left_whole(tmp_path: Path) -> None:
    generate_audio(SCENARIOS, OtherEngine(), GenerateOptions(out_dir=tmp_path))
    before = _snapshot(tmp_path)
    engine = ToneEngine()
    with pytest.raises(ConfigError) as caught:
        generate_audio(SCENARIOS, engine, GenerateOptions(out_dir=tmp_path))
    message = str(caught.value)
    assert "\n" not in message and "made with other-tts, not tone" in message
    assert "--force" in message
    assert engine.calls == 0 and _snapshot(tmp_path) == before
    # Even a scenario of its own would mix engines in the user's cache: refused too.
    extra = Scenario("extra", (Turn("one more thing"),))
    with pytest.raises(ConfigError, match="made with other-tts"):
        generate_audio([extra], engine, GenerateOptions(out_dir=tmp_path))
    assert _snapshot(tmp_path) == before


def test_other_words_for_a_turn_mean_another_scenarios_file(tmp_path: Path) -> None:
    mine = Scenario("quick_question", (Turn("my own first question"), Turn("and my second")))
    generate_audio([mine], ToneEngine(), GenerateOptions(out_dir=tmp_path))
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match="says other words"):
        generate_audio(
            [BUILTIN_SCENARIOS["quick_question"]], ToneEngine(), GenerateOptions(out_dir=tmp_path)
        )
    assert _snapshot(tmp_path) == before


def test_force_replaces_another_cache_and_its_files(tmp_path: Path) -> None:
    generate_audio(SCENARIOS, OtherEngine(), GenerateOptions(out_dir=tmp_path))
    result = generate_audio(SCENARIOS, ToneEngine(), GenerateOptions(out_dir=tmp_path, force=True))
    assert sorted(p.name for p in tmp_path.glob("*.pcm")) == sorted(result.generated)
    assert not inspect_cache(tmp_path).problems


def test_files_it_did_not_write_are_refused_and_deleted_only_with_prune(tmp_path: Path) -> None:
    stranger = tmp_path / "my_recording.pcm"
    stranger.write_bytes(b"\x01\x00" * 8000)
    with pytest.raises(ConfigError, match=r"1 PCM file\(s\) generate-audio did not write"):
        generate_audio(SCENARIOS, ToneEngine(), GenerateOptions(out_dir=tmp_path, force=True))
    assert [p.name for p in tmp_path.iterdir()] == ["my_recording.pcm"]
    with pytest.raises(ConfigError, match="--force --prune"):
        generate_audio(SCENARIOS, ToneEngine(), GenerateOptions(out_dir=tmp_path, prune=True))
    result = generate_audio(
        SCENARIOS, ToneEngine(), GenerateOptions(out_dir=tmp_path, force=True, prune=True)
    )
    assert not stranger.exists() and len(result.generated) == 8
    assert not inspect_cache(tmp_path).problems


def test_its_own_cache_is_completed_without_force(tmp_path: Path) -> None:
    """Adding a scenario to a cache this engine and voice made is not replacing anything."""
    generate_audio(SCENARIOS[:1], ToneEngine(), GenerateOptions(out_dir=tmp_path))
    before = _snapshot(tmp_path)
    result = generate_audio(SCENARIOS, ToneEngine(), GenerateOptions(out_dir=tmp_path))
    assert len(result.reused) == len(SCENARIOS[0].turns)
    after = _snapshot(tmp_path)
    assert all(after[name] == data for name, data in before.items() if name.endswith(".pcm"))
