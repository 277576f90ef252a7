"""`voice-loadtest run` end to end: a real Locust master and two real worker processes
against the reference agent simulator, reading what a user reads (exit code, summary JSON,
CSV, HTML, terminal)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtest.audio.cache import load_cache
from tests.integration.conftest import running_agent

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(
    reports: Path, cache: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 150
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    command = [
        sys.executable, "-m", "loadtest", "run", "--workers", "2", "--reports-dir", str(reports),
        "--pcm-dir", str(cache), "--greeting", "off", "--seed", "11", *args,
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=reports.parent,
    )  # fmt: skip
    summary_path = reports / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return done, summary


def test_distributed_run_measures_the_agent_truthfully(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    reports = tmp_path / "reports"
    done, summary = _run(
        reports, espeak_cache_dir, "--with-agent",
        "--agent-args", "--latency-ms 700 --barge-latency-ms 200 --log-level warning",
        "--users", "8", "--spawn-rate", "8", "--run-time", "22s", "--barge-in-rate", "0.5",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert summary is not None
    metrics = summary["metrics"]
    assert metrics["ttfb_ms"]["count"] >= 10
    assert abs(metrics["ttfb_ms"]["p50"] - 700) <= 15
    assert metrics["barge_in_ms"]["count"] >= 3
    assert abs(metrics["barge_in_ms"]["p50"] - 200) <= 15
    assert summary["rates"]["connection_success"] == 1.0
    assert summary["slo"]["verdict"] == "pass"
    assert summary["run"]["workers"] == 2
    # Both workers report the audio they play; the master names it once.
    cache = load_cache(espeak_cache_dir)
    assert summary["run"]["audio_cache"] == [cache.identity.digest]
    assert summary["run"]["scenarios"] == sorted(cache.scenarios)
    # Harness health is reported, and a loopback run at this size is nowhere near saturation.
    assert summary["harness"]["frame_lateness_ms"]["p99"] < 20
    assert 0.95 < summary["harness"]["realtime_factor"] <= 1.01

    with (reports / "locust_stats.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    names = {row["Name"] for row in rows}
    assert {"ttfb", "barge_in", "connect", "turn"} <= names
    ttfb_row = next(row for row in rows if row["Name"] == "ttfb")
    assert int(ttfb_row["Request Count"]) >= metrics["ttfb_ms"]["count"]
    html = (reports / "locust.html").read_text()
    assert "ttfb" in html and "barge_in" in html
    assert "verdict: PASS (exit code 0)" in done.stdout
    # the master wrote the voice report beside the summary, in the end-of-run step
    assert f"report: {reports / 'summary.html'}" in done.stdout
    assert "PASS" in (reports / "summary.html").read_text()


def test_slow_agent_fails_the_slo(tmp_path: Path, espeak_cache_dir: Path) -> None:
    done, summary = _run(
        tmp_path / "reports", espeak_cache_dir, "--with-agent",
        "--agent-args", "--latency-ms 3300 --response-ms 600 --log-level warning",
        "--users", "4", "--spawn-rate", "4", "--run-time", "16s", "--barge-in-rate", "0",
        "--first-byte-timeout-sec", "8",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert summary is not None and summary["slo"]["verdict"] == "fail"
    checks = {c["name"]: c for c in summary["slo"]["checks"]}
    assert checks["ttfb_p95_ms"]["status"] == "fail"
    assert abs(checks["ttfb_p95_ms"]["actual"] - 3300) <= 20


def test_acceptable_but_off_target_agent_warns_and_can_fail(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("warn_exit_code: 1\n")
    done, summary = _run(
        tmp_path / "reports", espeak_cache_dir, "--with-agent", "--slo", str(slo),
        "--agent-args", "--latency-ms 2500 --response-ms 600 --log-level warning",
        "--users", "4", "--spawn-rate", "4", "--run-time", "14s", "--barge-in-rate", "0",
    )  # fmt: skip
    assert summary is not None and summary["slo"]["verdict"] == "warn"
    assert done.returncode == 1  # warn → 1 because the SLO file asks for it


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_agent_exits_2_with_one_clear_line(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    url = f"ws://127.0.0.1:{_closed_port()}/api/v1/media/stream"
    done, _ = _run(tmp_path / "reports", espeak_cache_dir, "--ws-url", url, "--run-time", "5s",
                   timeout=60)  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the agent" in lines[0] and "refused" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ws-url", "http://127.0.0.1:1/x"], "did you mean ws://127.0.0.1:1/x"),
        (["--chunk-ms", "25", "--with-agent"], "CHUNK_MS"),
        (["--turns-per-user", "-1", "--with-agent"], "TURNS_PER_USER"),
    ],
)
def test_bad_settings_stop_before_any_process(
    tmp_path: Path, espeak_cache_dir: Path, args: list[str], message: str
) -> None:
    done, _ = _run(tmp_path / "reports", espeak_cache_dir, *args, timeout=60)
    assert done.returncode == 2  # nothing was judged: a configuration error, not a failed SLO
    assert message in done.stderr and "Traceback" not in done.stderr


def test_missing_audio_cache_is_named(tmp_path: Path) -> None:
    done, _ = _run(tmp_path / "reports", tmp_path / "no-cache", "--with-agent",
                   "--run-time", "5s", timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "audio cache folder not found" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ Locust's own settings


def _users_over_time(summary: dict[str, Any]) -> int:
    return max(entry["users"] for entry in summary["timeline"])


def test_locust_environment_variables_decide_when_run_is_not_told(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    """`LOCUST_USERS=7 LOCUST_RUN_TIME=… voice-loadtest run --with-agent`: Locust's variables
    win over nothing; run passes no -u/-r/-t of its own."""
    env = {"LOCUST_USERS": "7", "LOCUST_SPAWN_RATE": "7", "LOCUST_RUN_TIME": "8s"}
    done, summary = _run(tmp_path / "reports", espeak_cache_dir, "--with-agent",
                         "--agent-args", "--log-level warning", env=env, timeout=90)  # fmt: skip
    assert summary is not None, done.stdout[-2000:] + done.stderr[-2000:]
    run = summary["run"]
    assert (run["users"], run["spawn_rate"], run["run_time_s"]) == (7, 7, 8)
    assert _users_over_time(summary) == 7
    assert 8 <= run["duration_s"] < 20


def test_locust_conf_and_its_host_decide_and_the_command_line_wins(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    """A locust.conf in the working directory sets users, run time and the agent (Locust's
    host); -u on run's command line beats it, as in Locust; the host is probed and played."""
    with running_agent("--latency-ms", "700") as url:
        conf = f"users = 5\nspawn-rate = 5\nrun-time = 6s\nhost = {url}\n"
        (tmp_path / "locust.conf").write_text(conf)
        done, summary = _run(tmp_path / "reports", espeak_cache_dir, "-u", "3", timeout=90)
    assert summary is not None, done.stdout[-2000:] + done.stderr[-2000:]
    run = summary["run"]
    assert (run["users"], run["spawn_rate"], run["run_time_s"]) == (3, 5, 6)
    assert run["target"] == url and summary["counts"]["calls"] >= 3


def test_host_flag_names_the_agent_and_headless_is_accepted(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    with running_agent("--latency-ms", "700") as url:
        done, summary = _run(tmp_path / "reports", espeak_cache_dir, "-H", url, "--headless",
                             "-u", "2", "-r", "2", "-t", "5s", timeout=90)  # fmt: skip
    assert summary is not None, done.stdout[-2000:] + done.stderr[-2000:]
    assert summary["run"]["target"] == url and summary["run"]["users"] == 2
    assert done.stdout.splitlines()[0].startswith(f"audio: {espeak_cache_dir}: espeak (en-us)")


def test_accelerator_variables_reach_every_process_and_benign_closes_get_a_note(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    """The accelerator's variables, set in the environment as its users have them, are the
    run's settings; an agent that drops calls (1006) fails turns here, with a note saying the
    accelerator ignored such closes (WS_IGNORE_CLOSE_EXCEPTIONS is not set)."""
    env = {
        "PAUSE_BETWEEN_TURNS_SEC": "1", "TURN_TIMEOUT_SEC": "12", "WS_MAX_SSL_FAILS": "5",
        "WS_RECONNECT_BACKOFF_BASE_SEC": "0.05", "BARGE_REENTRY_MS": "800",
    }  # fmt: skip
    done, summary = _run(
        tmp_path / "reports", espeak_cache_dir, "--with-agent",
        "--agent-args", "--fault reset=1 --log-level warning",
        "-u", "3", "-r", "3", "-t", "10s", env=env, timeout=90,
    )  # fmt: skip
    assert summary is not None, done.stdout[-2000:] + done.stderr[-2000:]
    shown = summary["settings"]
    assert (shown["PAUSE_BETWEEN_TURNS_SEC"], shown["TURN_TIMEOUT_SEC"]) == (1.0, 12.0)
    assert (shown["RECONNECT_MAX"], shown["RECONNECT_BASE_DELAY_MS"]) == (5, 50)
    assert shown["BARGE_AFTER_MS"] == 800
    assert summary["counts"]["failures"].get("closed_mid_turn", 0) >= 1, summary["counts"]
    (note,) = summary["notes"]
    assert "WS_IGNORE_CLOSE_EXCEPTIONS=true" in note and f"note: {note}" in done.stdout
