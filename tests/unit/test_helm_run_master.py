"""helm/voice-loadtest/files/run-master.py, the master's wrapper in mode=run: the exit code is
always the master's, signals reach it, summary.html is rendered, and a report failure is one
line (the upload itself is tested against Azurite in tests/integration/test_helm_reports.py)."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "helm" / "voice-loadtest" / "files" / "run-master.py"
SUMMARY = {
    "run": {"target": "ws://agent/x"},
    "slo": {"verdict": "fail", "exit_code": 1, "reasons": ["ttfb"], "checks": []},
}


@pytest.fixture(scope="module")
def run_master() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_master", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("code", [0, 1, 2])
def test_exit_code_is_the_masters(
    run_master: ModuleType, tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_master.main(["--reports", str(tmp_path), "--", *_child(f"raise SystemExit({code})")])
        == code
    )
    assert f"the master exited with {code}" in capsys.readouterr().out


def test_a_killed_master_reads_as_128_plus_the_signal(
    run_master: ModuleType, tmp_path: Path
) -> None:
    command = _child("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert run_master.main(["--reports", str(tmp_path), "--", *command]) == 128 + 9


def test_summary_html_is_rendered_beside_the_summary(
    run_master: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.json"
    write = (
        f"import pathlib; pathlib.Path({str(summary)!r}).write_text({json.dumps(SUMMARY)!r}); "
        "raise SystemExit(1)"
    )
    assert run_master.main(["--reports", str(tmp_path), "--", *_child(write)]) == 1
    html = (tmp_path / "summary.html").read_text()
    assert html.startswith("<!DOCTYPE html>") or "<html" in html[:200]
    assert f"reports: {tmp_path / 'summary.html'}" in capsys.readouterr().out


def test_upload_failure_is_one_line_and_keeps_the_verdict(
    run_master: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "REPORTS_BLOB_ACCOUNT_URL", "REPORTS_BLOB_SAS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "locust_stats.csv").write_text("Type,Name\n")
    code = run_master.main(["--reports", str(tmp_path), "--upload", "--", *_child("pass")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert len(err) == 1 and err[0].startswith("reports: upload failed: no Blob Storage")
    assert "REPORTS_BLOB_ACCOUNT_URL" in err[0] and "AUDIO_BLOB" not in err[0]


def test_store_env_maps_the_reports_variables(run_master: ModuleType) -> None:
    env = {
        "REPORTS_BLOB_ACCOUNT_URL": "https://a.blob.core.windows.net",
        "REPORTS_BLOB_SAS": "sv=1",
        "AUDIO_BLOB_ACCOUNT_URL": "https://audio.example",
        "REPORTS_BLOB_CONTAINER": "r",
    }
    mapped = run_master._store_env(env)
    assert mapped["AUDIO_BLOB_ACCOUNT_URL"] == "https://a.blob.core.windows.net"
    assert mapped["AUDIO_BLOB_SAS"] == "sv=1" and mapped["AUDIO_BLOB_CONTAINER"] == "r"


def test_sigterm_reaches_the_master_and_its_code_is_kept(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    master = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(30)\n"
    )
    wrapper = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--reports", str(tmp_path), "--", *_child(master)],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert time.monotonic() < deadline and wrapper.poll() is None, "the master did not start"
        time.sleep(0.05)
    wrapper.send_signal(signal.SIGTERM)
    out, _ = wrapper.communicate(timeout=20)
    assert wrapper.returncode == 2 and "the master exited with 2" in out
