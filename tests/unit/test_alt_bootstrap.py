"""Engine-side set-up: finding and assembling the audio, our option defaults."""

from __future__ import annotations

import argparse
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadtest.alt.bootstrap import STAGING_DIR, SUMMARY_NAME, prepare, resolve_audio
from loadtest.audio.manifest import MANIFEST_NAME, ManifestEntry, to_line

NAMES = ("a_turn_1_of_2_x.pcm", "a_turn_2_of_2_y.pcm")


def _manifest(folder: Path, names: tuple[str, ...] = NAMES) -> None:
    lines = [
        to_line(
            ManifestEntry(
                filename=name, text="hi", voice="v", engine="espeak", sample_rate=16000,
                duration_seconds=0.1, speech_start_ms=0, speech_end_ms=60, scenario="a",
                turn_index=i, turn_count=len(names), hash="h", sha256="0" * 64, created_at="",
            )
        )
        for i, name in enumerate(names, start=1)
    ]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_NAME).write_text("\n".join(lines) + "\n")


def _pcm(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(name.encode().ljust(64, b"\0"))


@pytest.fixture(autouse=True)
def _clean_pcm_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCM_DIR", raising=False)


def test_audio_beside_the_locustfile_is_used_in_place(tmp_path: Path) -> None:
    _manifest(tmp_path)
    for name in NAMES:
        _pcm(tmp_path, name)
    assert resolve_audio(tmp_path) == (tmp_path, "")
    assert os.environ["PCM_DIR"] == str(tmp_path)
    assert not (tmp_path / STAGING_DIR).exists()


def test_relative_pcm_dir_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audio = tmp_path / "work" / "audio"
    _manifest(audio)
    for name in NAMES:
        _pcm(audio, name)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("PCM_DIR", "audio")
    assert resolve_audio(tmp_path / "elsewhere")[0] == Path("audio")


def test_zips_not_unpacked_by_alt_are_extracted(tmp_path: Path) -> None:
    _manifest(tmp_path)
    with zipfile.ZipFile(tmp_path / "voice-audio-1.zip", "w") as archive:
        for name in NAMES:
            archive.writestr(name, name.encode().ljust(64, b"\0"))
    target, note = resolve_audio(tmp_path)
    assert target == tmp_path / STAGING_DIR and os.environ["PCM_DIR"] == str(target)
    assert "(0 linked, 2 unzipped, 0 missing)" in note
    assert sorted(p.name for p in target.iterdir()) == sorted([MANIFEST_NAME, *NAMES])
    assert (target / NAMES[0]).read_bytes().startswith(NAMES[0].encode())


def test_zips_unpacked_into_sub_folders_are_linked(tmp_path: Path) -> None:
    _manifest(tmp_path)
    _pcm(tmp_path, NAMES[0])
    _pcm(tmp_path / "voice-audio-1", NAMES[1])
    target, _ = resolve_audio(tmp_path)
    assert target is not None
    assert (target / NAMES[0]).read_bytes() == (tmp_path / NAMES[0]).read_bytes()
    assert (target / NAMES[1]).read_bytes() == (tmp_path / "voice-audio-1" / NAMES[1]).read_bytes()


def test_manifest_in_a_sub_folder_is_found(tmp_path: Path) -> None:
    _manifest(tmp_path / "unzipped")
    for name in NAMES:
        _pcm(tmp_path / "unzipped", name)
    assert resolve_audio(tmp_path)[0] == tmp_path / "unzipped"


def test_a_second_run_rebuilds_the_staging_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _manifest(tmp_path)
    _pcm(tmp_path / "sub", NAMES[0])
    _pcm(tmp_path / "sub", NAMES[1])
    resolve_audio(tmp_path)
    (tmp_path / STAGING_DIR / "stale.pcm").write_bytes(b"x")
    monkeypatch.delenv("PCM_DIR")  # a new engine process
    target, _ = resolve_audio(tmp_path)
    assert target is not None and not (target / "stale.pcm").exists()


def test_no_manifest_leaves_pcm_dir_for_the_harness_to_report(tmp_path: Path) -> None:
    assert resolve_audio(tmp_path) == (None, "")
    assert "PCM_DIR" not in os.environ


class _Events:
    class _Hook:
        def __init__(self) -> None:
            self.listeners: list[Callable[..., Any]] = []

        def add_listener(self, listener: Callable[..., Any]) -> None:
            self.listeners.append(listener)

    def __init__(self) -> None:
        self.init_command_line_parser = self._Hook()
        self.init = self._Hook()


def _parsed(events: _Events) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slo-file", default=None)
    parser.add_argument("--summary-json", default=None)
    for listener in events.init_command_line_parser.listeners:
        listener(parser=parser)
    return parser.parse_args([])


def test_shipped_slo_and_summary_become_option_defaults(tmp_path: Path) -> None:
    events = _Events()
    prepare(tmp_path, events)
    assert _parsed(events).slo_file is None
    assert _parsed(events).summary_json == SUMMARY_NAME
    (tmp_path / "slo.yaml").write_text("warn_exit_code: 1\n")
    assert _parsed(events).slo_file == str(tmp_path / "slo.yaml")


def test_assembly_note_is_logged_once_locust_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _manifest(tmp_path)
    _pcm(tmp_path / "sub", NAMES[0])
    _pcm(tmp_path / "sub", NAMES[1])
    events = _Events()
    prepare(tmp_path, events)
    (listener,) = events.init.listeners
    with caplog.at_level("INFO", logger="voice-loadtest"):
        listener(environment=None)
    assert "assembled the audio" in caplog.text and "(2 linked" in caplog.text
