"""Fault suite, the harness's own side: signals, dying processes and disks that cannot take the
reports. Real `voice-loadtest run` processes (master, workers, agent simulator); full and
read-only disks are real tmpfs mounts (root, as for the docker tests)."""

from __future__ import annotations

import os
import signal
import time
from contextlib import nullcontext
from pathlib import Path

import psutil
import pytest

from loadtest.procutil import free_port
from tests.integration.faults import (
    fill,
    finish,
    master_sample,
    role,
    signal_all,
    start_run,
    summary_of,
    tmpfs,
    until,
    wait_for_children,
    wait_for_file,
    wait_until_gone,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENT = ("--with-agent", "--agent-args", "--latency-ms 600 --log-level warning")


def _no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text[-3000:]
        assert "unexpected state" not in text, text[-3000:]
        assert "KeyboardInterrupt" not in text, text[-3000:]


@pytest.mark.parametrize(
    ("target", "signum", "code"),
    [("run", signal.SIGINT, 130), ("every process", signal.SIGINT, 130),
     ("run", signal.SIGTERM, 143)],
)  # fmt: skip
def test_a_signal_stops_everything_and_keeps_the_partial_reports(
    tmp_path: Path, espeak_cache_dir: Path, target: str, signum: int, code: int
) -> None:
    reports, metrics_port = tmp_path / "reports", free_port()
    run = start_run(
        reports, espeak_cache_dir, *AGENT, "--users", "4", "--spawn-rate", "4",
        "--run-time", "2m", "--metrics-port", str(metrics_port), workers=2,
    )  # fmt: skip
    children = wait_for_children(run.pid, 4)  # agent, master, two workers
    # A terminal's Ctrl-C reaches the run alone (it then stops the children in order).
    assert os.getpgid(run.pid) not in {os.getpgid(p.pid) for p in children}
    until(
        lambda: master_sample(metrics_port, "voice_loadtest_ttfb_seconds_count") >= 2,
        60, "answers measured",
    )  # fmt: skip
    stopped = time.monotonic()
    signal_all([psutil.Process(run.pid), *children] if target != "run" else [], signum)
    if target == "run":
        run.send_signal(signum)
    returncode, out, err = finish(run, timeout_s=30)
    elapsed = time.monotonic() - stopped
    wait_until_gone(children, timeout_s=max(0.1, 15 - elapsed))
    assert returncode == code, out[-2000:] + err[-2000:]
    _no_traceback(out, err)
    name = signal.Signals(signum).name
    assert f"stopped by signal ({name})" in err
    summary = summary_of(reports)  # partial, and says how it ended
    assert summary["run"]["stopped_by"] == "SIGINT"  # the run hands every signal on as SIGINT
    assert summary["counts"]["calls"] >= 4 and summary["metrics"]["ttfb_ms"]["count"] >= 1
    assert summary["workers_lost"] == []  # stopped workers were not lost
    assert "Stopped by signal" in (reports / "summary.html").read_text()
    assert (reports / "locust.html").is_file()


def test_a_killed_master_ends_the_run_in_one_line(tmp_path: Path, espeak_cache_dir: Path) -> None:
    reports = tmp_path / "reports"
    run = start_run(reports, espeak_cache_dir, *AGENT, "--users", "2", "--run-time", "2m")
    children = wait_for_children(run.pid, 3)
    time.sleep(4)
    (master,) = [p for p in children if role(p) == "master"]
    master.kill()
    returncode, out, err = finish(run, timeout_s=30)
    assert returncode == 2
    lines = [line for line in err.splitlines() if "voice-loadtest: error" in line]
    assert len(lines) == 1 and "master was killed (SIGKILL)" in lines[0], err[-2000:]
    _no_traceback(out, err)
    wait_until_gone(children, timeout_s=15)


def test_a_killed_run_takes_its_agent_and_locust_with_it(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    reports = tmp_path / "reports"
    run = start_run(reports, espeak_cache_dir, *AGENT, "--users", "2", "--run-time", "2m")
    children = wait_for_children(run.pid, 3)
    assert "agent" in {role(p) for p in children}
    time.sleep(3)
    run.kill()
    run.communicate(timeout=10)
    assert wait_until_gone(children, timeout_s=15) < 15


def _plain_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file" / "reports"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("cannot be created", "cannot be created: Not a directory"),
        ("read-only", "is not writable: Read-only file system"),
        ("full", "MiB free; the reports need 16 MiB"),
    ],
)
def test_a_reports_folder_that_cannot_take_the_reports_stops_the_run_before_load(
    tmp_path: Path, espeak_cache_dir: Path, case: str, message: str
) -> None:
    mount = tmp_path / "mnt"
    if case == "cannot be created":
        reports, disk = _plain_file(tmp_path), None
    elif case == "read-only":
        reports, disk = mount, tmpfs(mount, "4m", read_only=True)
    else:
        reports, disk = mount / "reports", tmpfs(mount, "24m")
    with disk if disk is not None else nullcontext():
        if case == "full":
            fill(mount, leave_bytes=8 << 20)
        run = start_run(reports, espeak_cache_dir, *AGENT, "--run-time", "30s", cwd=tmp_path)
        returncode, out, err = finish(run, timeout_s=30)
    assert returncode == 2, out + err
    assert err.strip().count("\n") == 0 and message in err, err
    assert "Traceback" not in err and out == ""  # one line: no Locust process ever ran


def test_a_disk_that_fills_during_the_run_keeps_the_summary(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    mount = tmp_path / "mnt"
    with tmpfs(mount, "20m"):
        reports = mount / "reports"
        run = start_run(reports, espeak_cache_dir, *AGENT, "--users", "2", "--run-time", "14s")
        wait_for_file(reports / "locust_stats.csv", timeout_s=30)
        fill(mount)  # the disk is full from now on
        returncode, out, err = finish(run, timeout_s=90)
        assert not (reports / "summary.json").exists()
    assert returncode == 2, out[-2000:] + err[-2000:]
    _no_traceback(out, err)
    (line,) = [line for line in err.splitlines() if "cannot write summary" in line]
    assert "No space left on device" in line and "the summary was saved to" in line
    saved = Path(line.rsplit("saved to ", 1)[1].split(" instead")[0])
    try:
        assert '"verdict"' in saved.read_text()
    finally:
        saved.unlink()
    assert "verdict:" in out  # the table still reached the terminal
