"""`voice-loadtest alt export` as a user runs it: one clear line per bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

URL = "wss://agent.example.com/api/v1/media/stream"


def _export(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.alt", "export", "--out", "alt", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--test-id", "My Test", "--ws-url", URL],
         "--test-id 'My Test' is invalid: Azure Load Testing test IDs are 2-50 characters"),
        (["--ws-url", "http://agent.example.com/ws"],
         "a WebSocket URL starts with ws:// or wss:// (did you mean ws://agent.example.com/ws?)"),
        (["--ws-url", "ws://agent.example.com/ws"], "is not wss://"),
        (["--ws-url", URL, "--pcm-dir", "no-such-audio"], "audio cache folder not found"),
        (["--ws-url", URL, "--key-vault-secret", "WS_AUTH_TOKEN=s3cr3t"],
         "not a Key Vault secret identifier"),
        (["--ws-url", URL, "--engines", "500"], "1-400 engine instances"),
    ],
)  # fmt: skip
def test_bad_input_gives_one_clear_line(
    tmp_path: Path, espeak_cache_dir: Path, args: list[str], expected: str
) -> None:
    if "--pcm-dir" not in args:
        args = [*args, "--pcm-dir", str(espeak_cache_dir)]
    done = _export(*args, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("voice-loadtest: error: ") and expected in lines[0]
    assert "s3cr3t" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "alt").exists()


def test_empty_audio_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    done = _export("--ws-url", URL, "--pcm-dir", "audio", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "no audio in the cache" in line


def test_good_export_reports_criteria_warnings_and_next_step(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    done = _export(
        "--ws-url", URL, "--pcm-dir", str(espeak_cache_dir), "--engines", "2", "--users", "700",
        "--turns-per-user", "2", "--test-id", "voice-prod", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ttfb: p95(response_time_ms) > 3000" in done.stdout
    assert "scripts/azure-load-test.sh --config alt/alt-config.yaml" in done.stdout
    (warning,) = done.stderr.strip().splitlines()
    assert warning.startswith("voice-loadtest: warning: 350 real-time callers per engine")
    doc = yaml.safe_load((tmp_path / "alt" / "alt-config.yaml").read_text())
    assert {"name": "TURNS_PER_USER", "value": "2"} in doc["env"]
