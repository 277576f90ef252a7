"""`voice-loadtest generate-audio` and `audio inspect` as a user runs them: real espeak-ng,
real files, a real subprocess for each command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.audio.cache import load_cache
from loadtest.audio.pcm import duration_ms, rms_dbfs

pytestmark = pytest.mark.integration


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def espeak_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("cache")
    run = cli("generate-audio", "--engine", "espeak", "--out", str(out))
    assert run.returncode == 0, run.stderr
    return out, run.stdout + run.stderr


def test_espeak_generates_both_scenarios(espeak_cache: tuple[Path, str]) -> None:
    out, output = espeak_cache
    assert "8 generated, 0 reused" in output
    cache = load_cache(out)
    assert {n: len(c) for n, c in cache.scenarios.items()} == {
        "insurance_inquiry": 5,
        "quick_question": 3,
    }
    for clips in cache.scenarios.values():
        for clip in clips:
            entry = clip.entry
            assert entry.engine == "espeak" and entry.sample_rate == 16000
            # Margins are exact, and the boundaries bracket the loud part of the file.
            assert entry.speech_start_ms == 200
            assert entry.speech_end_ms == round(duration_ms(clip.pcm, 16000)) - 200
            head = clip.pcm[: entry.speech_start_ms * 32]
            body = clip.pcm[entry.speech_start_ms * 32 : entry.speech_end_ms * 32]
            tail = clip.pcm[entry.speech_end_ms * 32 :]
            assert rms_dbfs(body) > rms_dbfs(head) + 20
            assert rms_dbfs(body) > rms_dbfs(tail) + 20
            words = len(entry.text.split())
            assert 0.15 * words < (entry.speech_end_ms - entry.speech_start_ms) / 1000 < words


def test_second_run_regenerates_nothing(espeak_cache: tuple[Path, str]) -> None:
    out, _ = espeak_cache
    before = {p.name: p.read_bytes() for p in out.glob("*.pcm")}
    again = cli("generate-audio", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "0 generated, 8 reused" in again.stdout
    assert again.stderr.count("reused ") == 8
    assert {p.name: p.read_bytes() for p in out.glob("*.pcm")} == before


def test_pcm_dir_is_the_default_output(tmp_path: Path) -> None:
    run = cli("generate-audio", "--scenarios", "quick_question", "--max-turns", "1",
              env={"PCM_DIR": str(tmp_path / "cache")})  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "cache").glob("quick_question_turn_1_of_1_*.pcm"))) == 1


def test_inspect_reports_clean_and_broken_caches(
    espeak_cache: tuple[Path, str], azure_sample_dir: Path, tmp_path: Path
) -> None:
    out, _ = espeak_cache
    clean = cli("audio", "inspect", str(out), "--json")
    assert clean.returncode == 0, clean.stdout
    report = json.loads(clean.stdout)
    assert len(report["files"]) == 8 and report["problems"] == []
    assert all(f["sha256_ok"] is True for f in report["files"])

    legacy = cli("audio", "inspect", str(azure_sample_dir))
    assert legacy.returncode == 0 and "legacy format, 8 readable files" in legacy.stdout

    broken = tmp_path / "broken"
    broken.mkdir()
    for path in out.glob("quick_question_*"):
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "manifest.jsonl").write_text(
        "".join(
            line + "\n"
            for line in (out / "manifest.jsonl").read_text().splitlines()
            if "quick_question" in line
        )
    )
    victim = sorted(broken.glob("*.pcm"))[0]
    victim.write_bytes(victim.read_bytes() + b"\x00")
    bad = cli("audio", "inspect", str(broken))
    assert bad.returncode == 2  # the run would refuse this cache, so inspect says so the same way
    assert "odd byte length" in bad.stdout and "1 problem(s)" in bad.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate-audio", "--scenarios", "nope"], "unknown scenario 'nope'"),
        (["generate-audio", "--rate", "5"], "must be from 0.5 to 2.0"),
        (["generate-audio", "--engine", "azure"], "AZURE_SPEECH_KEY"),
        (["generate-audio", "--scenarios-file", "/nonexistent.yaml"], "cannot read scenarios"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    env = {k: "" for k in os.environ if k.startswith("AZURE_")}
    run = cli(*args, "--out", str(tmp_path / "o"), env=env)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("voice-loadtest: error: ") and message in lines[0]
    assert "Traceback" not in run.stderr


def test_malformed_scenarios_yaml_and_unwritable_out(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "s.yaml"
    bad_yaml.write_text("scenarios: [\n  - name: x\n")
    run = cli("generate-audio", "--scenarios-file", str(bad_yaml), "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and f"{bad_yaml}: malformed YAML" in run.stderr
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    run = cli("generate-audio", "--out", str(blocker / "sub"))
    assert run.returncode == 2 and "cannot create output folder" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
