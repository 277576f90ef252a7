"""The end of a run (loadtest/runtime/reports.py): `voice-loadtest reports run` keeps the
master's exit code, forwards signals to it, writes summary.html when the master did not, and
a report failure is one line (the upload itself is tested against Azurite in
tests/integration/test_helm_reports.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtest.cli import main
from loadtest.runtime import reports

SUMMARY = {
    "run": {"target": "ws://agent/x"},
    "slo": {"verdict": "fail", "exit_code": 1, "reasons": ["ttfb"], "checks": []},
}


def run(*argv: str) -> int:
    """``voice-loadtest reports run ARGV`` in this process."""
    return main(["reports", "run", *argv])


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("code", [0, 1, 2])
def test_exit_code_is_the_masters(
    tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--reports", str(tmp_path), "--", *_child(f"raise SystemExit({code})")) == code
    assert f"the master exited with {code}" in capsys.readouterr().out


def test_a_killed_master_reads_as_128_plus_the_signal(tmp_path: Path) -> None:
    command = _child("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert run("--reports", str(tmp_path), "--", *command) == 128 + 9


def test_summary_html_is_written_when_the_master_could_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.json"
    write = (
        f"import pathlib; pathlib.Path({str(summary)!r}).write_text({json.dumps(SUMMARY)!r}); "
        "raise SystemExit(1)"
    )
    assert run("--reports", str(tmp_path), "--", *_child(write)) == 1
    html = (tmp_path / "summary.html").read_text()
    assert html.startswith("<!DOCTYPE html>") or "<html" in html[:200]
    assert f"report: {tmp_path / 'summary.html'}" in capsys.readouterr().out


def test_a_report_the_master_wrote_is_left_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary, html = tmp_path / "summary.json", tmp_path / "summary.html"
    summary.write_text(json.dumps(SUMMARY))
    html.write_text("<html>the master's</html>")
    os.utime(html, (summary.stat().st_mtime + 1, summary.stat().st_mtime + 1))
    assert run("--reports", str(tmp_path), "--", *_child("pass")) == 0
    assert html.read_text() == "<html>the master's</html>"
    assert "report:" not in capsys.readouterr().out


def test_upload_failure_is_one_line_and_keeps_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "REPORTS_BLOB_ACCOUNT_URL", "REPORTS_BLOB_SAS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "locust_stats.csv").write_text("Type,Name\n")
    code = run("--reports", str(tmp_path), "--upload", "--", *_child("pass"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert len(err) == 1 and err[0].startswith("reports: upload failed: no Blob Storage")
    assert "REPORTS_BLOB_ACCOUNT_URL" in err[0] and "AUDIO_BLOB" not in err[0]


def test_upload_alone_says_what_failed_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "REPORTS_BLOB_ACCOUNT_URL", "REPORTS_BLOB_SAS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "summary.json").write_text("{}")
    assert main(["reports", "upload", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("reports: upload failed: no Blob Storage")
    assert main(["reports", "upload", str(tmp_path / "missing")]) == 2
    assert "no such reports folder" in capsys.readouterr().err


def test_store_env_maps_the_reports_variables() -> None:
    env = {
        "REPORTS_BLOB_ACCOUNT_URL": "https://a.blob.core.windows.net",
        "REPORTS_BLOB_SAS": "sv=1",
        "AUDIO_BLOB_ACCOUNT_URL": "https://audio.example",
        "REPORTS_BLOB_CONTAINER": "r",
    }
    mapped = reports._store_env(env)
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
        [sys.executable, "-m", "loadtest", "reports", "run", "--reports", str(tmp_path), "--",
         *_child(master)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert time.monotonic() < deadline and wrapper.poll() is None, "the master did not start"
        time.sleep(0.05)
    wrapper.send_signal(signal.SIGTERM)
    out, _ = wrapper.communicate(timeout=20)
    assert wrapper.returncode == 2 and "the master exited with 2" in out
