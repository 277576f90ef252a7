"""``audio push|pull|ls`` handlers: argument wiring, output, errors (folder-backed store)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from loadtest.audio.generate import GenerateOptions, generate_audio
from loadtest.audio.manifest import MANIFEST_NAME
from loadtest.audio.scenarios import BUILTIN_SCENARIOS
from loadtest.errors import ConfigError
from loadtest.storage import commands
from loadtest.storage.base import AudioStore
from loadtest.storage.commands import add_storage_arguments
from loadtest.storage.local import LocalStore
from tests.signals import ToneEngine


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="voice-loadtest")
    sub = parser.add_subparsers(dest="command", required=True)
    audio_sub = sub.add_parser("audio").add_subparsers(dest="audio_command", required=True)
    add_storage_arguments(audio_sub)
    return parser.parse_args(["audio", *argv])


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    out = tmp_path / "cache"
    generate_audio(
        [BUILTIN_SCENARIOS["quick_question"]], ToneEngine(), GenerateOptions(out_dir=out)
    )
    return out


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "remote"

    def open_store(args: argparse.Namespace) -> AudioStore:
        return LocalStore(root, args.prefix or "")

    monkeypatch.setattr(commands, "open_store", open_store)
    return root


def test_parser_defaults() -> None:
    args = _parse("pull")
    assert (args.handler, args.concurrency, args.delete, args.dir) == (
        commands.run_pull, 8, False, None,
    )  # fmt: skip
    args = _parse("push", "d", "--delete", "--create-container", "--prefix", "v1/")
    assert args.handler is commands.run_push and args.create_container and args.prefix == "v1/"
    assert _parse("ls", "--json").handler is commands.run_ls


def test_push_pull_ls(
    cache_dir: Path, remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert commands.run_push(_parse("push", str(cache_dir), "--create-container")) == 0
    out = capsys.readouterr().out
    assert "3 uploaded, 0 unchanged, manifest uploaded, 0 deleted" in out

    assert commands.run_push(_parse("push", str(cache_dir), "--dry-run")) == 0
    assert "would push" in capsys.readouterr().out

    target = tmp_path / "pulled"
    (target).mkdir()
    (target / "stray_turn_1_of_1_x.pcm").write_bytes(b"\x00\x01")
    assert commands.run_pull(_parse("pull", str(target))) == 0
    captured = capsys.readouterr()
    assert "3 downloaded, 0 already present, manifest written" in captured.out
    assert "1 local .pcm file(s) not in the manifest" in captured.err

    assert commands.run_ls(_parse("ls")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "size", "sha256"]
    assert any(line.startswith(MANIFEST_NAME) for line in lines)
    assert lines[-1].startswith("4 object(s)")

    assert commands.run_ls(_parse("ls", "--json")) == 0
    listing = json.loads(capsys.readouterr().out)
    assert len(listing["objects"]) == 4
    assert all(len(o["sha256"]) == 64 for o in listing["objects"])


def test_pull_reads_pcm_dir_by_default(
    cache_dir: Path, remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands.run_push(_parse("push", str(cache_dir), "--create-container"))
    monkeypatch.setenv("PCM_DIR", str(tmp_path / "from-env"))
    commands.run_pull(_parse("pull"))
    assert (tmp_path / "from-env" / MANIFEST_NAME).is_file()


def test_real_store_without_credentials_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("AZURE_STORAGE_CONNECTION_STRING", "AUDIO_BLOB_ACCOUNT_URL", "AUDIO_BLOB_SAS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="no Blob Storage credentials"):
        commands.run_ls(_parse("ls"))
