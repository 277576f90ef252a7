from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from loadtest.audio.cache import describe_cache, has_audio, inspect_cache, load_cache
from loadtest.audio.generate import GenerateOptions, generate_audio
from loadtest.audio.manifest import MANIFEST_NAME
from loadtest.audio.scenarios import BUILTIN_SCENARIOS
from loadtest.errors import AudioError
from tests.signals import ToneEngine


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    generate_audio(
        [BUILTIN_SCENARIOS["quick_question"]], ToneEngine(), GenerateOptions(out_dir=tmp_path)
    )
    return tmp_path


def test_legacy_azure_cache_loads_in_turn_order(azure_sample_dir: Path) -> None:
    cache = load_cache(azure_sample_dir)
    assert set(cache.scenarios) == {"insurance_inquiry", "quick_question"}
    turns = cache.scenarios["insurance_inquiry"]
    assert [c.entry.turn_index for c in turns] == [1, 2, 3, 4, 5]
    assert all(0 < c.speech_start_ms < c.speech_end_ms for c in turns)
    assert inspect_cache(azure_sample_dir).format == "legacy"


def test_bare_folder_of_pcm_files_loads_with_a_warning(
    tmp_path: Path, azure_sample_dir: Path
) -> None:
    for path in azure_sample_dir.glob("quick-question-*.pcm"):
        shutil.copy(path, tmp_path / path.name)
    cache = load_cache(tmp_path)
    assert any("no manifest.jsonl" in w for w in cache.warnings)
    assert [c.entry.turn_index for c in cache.scenarios["quick_question"]] == [1, 2, 3]


def test_old_format_fixture_written_by_the_test(tmp_path: Path, azure_sample_dir: Path) -> None:
    source = azure_sample_dir / "quick-question-turn-3-of-3_3c40d9d42a.pcm"
    (tmp_path / "x.pcm").write_bytes(source.read_bytes())
    (tmp_path / MANIFEST_NAME).write_text(
        json.dumps({"filename": "x.pcm", "path": "elsewhere/x.pcm", "text": "Thanks",
                    "voice": "v", "sample_rate": 16000, "style": "chat", "rate": "+0%",
                    "duration_seconds": 2.16, "label": "l", "scenario": "demo",
                    "turn_index": 3, "turn_count": 3, "created_at": "", "hash": "h"}) + "\n"
    )  # fmt: skip
    cache = load_cache(tmp_path)
    (clip,) = cache.scenarios["demo"]
    assert clip.entry.text == "Thanks" and clip.speech_end_ms > clip.speech_start_ms


def _problems(directory: Path, **kwargs: object) -> list[str]:
    return inspect_cache(directory, **kwargs).problems  # type: ignore[arg-type]


def test_inspect_finds_each_kind_of_problem(cache_dir: Path) -> None:
    files = sorted(cache_dir.glob("*.pcm"))
    assert _problems(cache_dir) == []
    (cache_dir / "stray.pcm").write_bytes(b"\x00\x00" * 100)
    files[0].write_bytes(files[0].read_bytes() + b"\x00")  # odd length
    files[1].write_bytes(files[1].read_bytes()[:-2] + b"\x10\x10")  # hash mismatch
    files[2].unlink()  # manifest line without file
    problems = "\n".join(_problems(cache_dir))
    assert "stray.pcm: file has no manifest line" in problems
    assert "odd byte length" in problems
    assert "sha256 mismatch" in problems
    assert "named in the manifest but missing" in problems
    with pytest.raises(AudioError, match=r"\+3 more; see `voice-loadtest audio inspect"):
        load_cache(cache_dir)


def test_sample_rate_mismatch_empty_and_silent_files(cache_dir: Path, tmp_path: Path) -> None:
    assert "expected 8000 Hz" in _problems(cache_dir, expected_rate=8000)[0]
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "a_turn_1_of_2.pcm").write_bytes(b"")
    (bare / "a_turn_2_of_2.pcm").write_bytes(bytes(16000))
    problems = _problems(bare)
    assert any("empty PCM" in p for p in problems)
    assert any("no speech detected" in p for p in problems)


def test_manifest_garbage_and_missing_folder(cache_dir: Path, tmp_path: Path) -> None:
    with (cache_dir / MANIFEST_NAME).open("a") as handle:
        handle.write("this is not json\n")
    assert any("not JSON" in p for p in _problems(cache_dir))
    with pytest.raises(AudioError, match="audio cache folder not found.*generate-audio"):
        load_cache(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AudioError, match="no audio in the cache"):
        load_cache(empty)


def test_digest_names_the_audio_not_the_manifest(cache_dir: Path, tmp_path: Path) -> None:
    digest = load_cache(cache_dir).identity.digest
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    copy = tmp_path / "copy"
    shutil.copytree(cache_dir, copy)
    manifest = copy / MANIFEST_NAME
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    for line in lines:
        line["created_at"] = "2000-01-01T00:00:00+00:00"  # same audio, another manifest
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert load_cache(copy).identity.digest == digest
    pcm = copy / lines[0]["filename"]
    data = bytearray(pcm.read_bytes())
    data[200] ^= 0x01  # one sample differs: another cache
    pcm.write_bytes(bytes(data))
    lines[0]["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert load_cache(copy).identity.digest != digest


def test_identity_names_engine_voice_files_and_a_content_digest(
    cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    identity = load_cache(cache_dir).identity
    assert identity == describe_cache(cache_dir)  # from the manifest alone, the same
    assert (identity.engines, identity.voices, identity.files) == (("tone",), ("tone-a",), 3)
    assert identity.sample_rates == (16000,) and identity.digest.startswith("sha256:")
    assert "tone (tone-a), 3 files, 16000 Hz, sha256:" in identity.line()
    # The digest is the audio's: another folder with the same files has it too ...
    copy = tmp_path_factory.mktemp("copy")
    for path in cache_dir.iterdir():
        shutil.copy(path, copy / path.name)
    assert describe_cache(copy).digest == identity.digest
    # ... and one changed byte changes it (read from the bytes where no sha256 is listed).
    (copy / MANIFEST_NAME).unlink()
    victim = sorted(copy.glob("*.pcm"))[0]
    assert describe_cache(copy).digest == identity.digest
    victim.write_bytes(victim.read_bytes()[:-2] + b"\x01\x00")
    assert describe_cache(copy).digest != identity.digest
    assert has_audio(copy) and not has_audio(tmp_path_factory.mktemp("empty"))
