"""One meaning per exit code, on every entry point, as a CI job sees it: 0 pass (or warn), 1 a
failed SLO, 2 an invalid run or a configuration/usage error — with one line, never a traceback.
(`run`'s SLO verdicts are in test_run.py; `alt export`'s refusals in test_alt_cli.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.procutil import free_port, stop_processes
from tests.integration.conftest import running_agent

pytestmark = [pytest.mark.integration]


def _cli(
    *args: str, cwd: Path, timeout: int = 90, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AUDIO_BLOB"))}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "loadtest", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--chunk-ms", "25", "--with-agent"], "CHUNK_MS='25' is invalid"),
        (["run", "--users", "0", "--with-agent"], "--users must be >= 1"),
        (["run", "--with-agent", "--locust-args", '"unclosed'], "No closing quotation"),
        (["locust", "--headless", "--chunk-ms", "25"], "CHUNK_MS='25' is invalid"),
        # Locust's own set-up error (Locust exits 1 for it): not judged, so 2.
        (["locust", "--headless", "--autoquit", "3"], "--autoquit is only meaningful"),
        (["agent", "--latency-ms", "300"], "is below --endpoint-silence-ms"),
        (["alt", "export", "--out", "alt", "--ws-url", "http://x/y"], "did you mean ws://x/y"),
        (["generate-audio", "--rate", "5", "--out", "audio"], "must be from 0.5 to 2.0"),
        (["audio", "inspect", "no-such-folder"], "audio cache folder not found"),
        (["audio", "pull", "audio"], "no Blob Storage credentials"),
        (["audio", "push", "audio"], "no Blob Storage credentials"),
        (["report", "no-such-summary.json"], "does not exist"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_configuration_errors_exit_2_on_every_entry_point(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert message in done.stdout + done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("missing", ["target", "audio"])
def test_a_run_that_cannot_work_stops_before_any_process_starts(
    tmp_path: Path, espeak_cache_dir: Path, missing: str
) -> None:
    if missing == "target":
        args, message = ["--pcm-dir", str(espeak_cache_dir)], "no target: set WS_URL"
    else:
        args, message = ["--with-agent"], "audio_cache: audio cache folder not found"
    done = _cli("run", "-t", "5s", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""  # no agent, master or worker
    assert not (tmp_path / "reports").exists()  # and no empty reports folder left behind


@pytest.mark.parametrize(
    "args", [["run", "--with-agent"], ["locust", "--headless", "-t", "5s"]], ids=["run", "locust"]
)
def test_a_refused_accelerator_variable_stops_the_run_in_one_line(
    tmp_path: Path, espeak_cache_dir: Path, args: list[str]
) -> None:
    done = _cli(*args, "--pcm-dir", str(espeak_cache_dir), cwd=tmp_path,
                extra_env={"WS_RECONNECT_BACKOFF_FACTOR": "1.8"})  # fmt: skip
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    (line,) = [ln for ln in done.stderr.splitlines() if "WS_RECONNECT_BACKOFF_FACTOR" in ln]
    assert "is not supported here" in line and "RECONNECT_BASE_DELAY_MS" in line
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args", [["nonsense"], ["run", "--no-such-flag"], ["locust", "--no-such-flag"], []]
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "usage:" in done.stderr or "unrecognized arguments" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_of_the_locust_entry_point_lists_the_voice_options(tmp_path: Path) -> None:
    done = _cli("locust", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for option in ("--ws-url WS_URL", "--barge-in-rate BARGE_IN_RATE", "--slo-file"):
        assert option in done.stdout
    assert "--users" in done.stdout  # and Locust's own


@pytest.fixture
def agent() -> Iterator[str]:
    with running_agent("--latency-ms", "700") as url:
        yield url


def test_a_failed_slo_exits_1_through_locust_and_a_worker_exits_0(
    tmp_path: Path, espeak_cache_dir: Path, agent: str
) -> None:
    """A judged run keeps its verdict's code through the Locust entry point (Locust's own
    failed-request code is not used), and a worker, which judges nothing, exits 0."""
    slo = tmp_path / "slo.yaml"
    slo.write_text(  # the 700 ms agent misses a 200 ms TTFB; generous harness limits
        "ttfb_p95_ms: {target: 100, acceptable: 200}\n"
        "harness: {max_lateness_p99_ms: 1000, max_receive_lag_p99_ms: 1000, "
        "max_worker_cpu_percent: 100}\n"
    )
    port = free_port()
    # Locust's own entry point has no stop timeout, so a turn still under way at 10 s is cut and
    # not judged. A quick question's turn takes about 5 s against this agent; the insurance
    # scenario's first takes 9.7 s, and three callers all on it on a slow machine left no turn
    # to judge (an invalid run, exit 2).
    common = ["--pcm-dir", str(espeak_cache_dir), "--greeting", "off", "--metrics-port", "0",
              "--scenario-weights", "quick_question=1"]  # fmt: skip
    master = subprocess.Popen(
        [sys.executable, "-m", "loadtest", "locust", "--master", "--headless",
         "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
         "--expect-workers", "1", "-u", "3", "-r", "3", "-t", "10s", "--host", agent,
         "--slo-file", str(slo), *common],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "loadtest", "locust", "--worker", "--master-host", "127.0.0.1",
         "--master-port", str(port), *common],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        out, _ = master.communicate(timeout=120)
        worker_out, _ = worker.communicate(timeout=60)
    finally:
        stop_processes([master, worker])
    assert master.returncode == 1, out[-3000:]
    assert "ttfb_p95_ms" in out and "verdict: FAIL (exit code 1)" in out
    assert worker.returncode == 0, worker_out[-3000:]
