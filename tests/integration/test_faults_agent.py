"""Fault suite, the agent's side: an agent that goes down and comes back, one that is silent or
sends garbage, one that breaks the WebSocket protocol, and a load worker that dies. Each is a
real `voice-loadtest run` (Locust master and workers) against a real server on loopback."""

from __future__ import annotations

import csv
import signal
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.procutil import free_port
from tests.integration.faults import (
    MISBEHAVIOURS,
    RuleBreaker,
    finish,
    master_sample,
    role,
    start_run,
    summary_of,
    until,
    wait_for_children,
    wait_for_file,
)
from tests.integration.realtime_client import AgentProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _csv_rows(reports: Path, name: str) -> list[dict[str, str]]:
    with (reports / name).open() as handle:
        return list(csv.DictReader(handle))


def test_a_recovering_agent_sees_no_reconnect_storm_and_the_summary_shows_the_outage(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    port, callers, down_s = free_port(), 10, 10.0
    agent = AgentProcess("--port", str(port), "--latency-ms", "600")
    reports = tmp_path / "reports"
    run = start_run(
        reports, espeak_cache_dir, "--ws-url", agent.url, "--users", str(callers),
        "--spawn-rate", str(callers), "--run-time", "3m", "--barge-in-rate", "0",
    )  # fmt: skip
    try:
        live = agent  # every caller in a call, then the agent dies
        until(
            lambda: live.metric("voice_loadtest_agent_active_connections") >= callers,
            60, "all callers connected",
        )  # fmt: skip
        agent.proc.kill()
        agent.stop()
        down_at = time.time()
        time.sleep(down_s)
        agent = AgentProcess("--port", str(port), "--latency-ms", "600")
        up_at = time.time()
        back = agent  # the callers come back to the restarted agent and talk to it
        until(
            lambda: back.metric("voice_loadtest_agent_turns_total") >= callers // 2,
            45, "calls resumed",
        )  # fmt: skip
        run.send_signal(signal.SIGINT)
        returncode, out, err = finish(run, timeout_s=30)
    finally:
        agent.stop()
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert returncode == 130 and "Traceback" not in err, err[-3000:]
    summary = summary_of(reports)
    outage = summary["outage"]
    assert outage is not None, summary["counts"]
    first = datetime.fromisoformat(outage["first_failure_at"]).timestamp()
    assert down_at - 1 <= first <= down_at + 2
    assert 0.5 * down_s <= outage["window_s"] <= up_at - down_at + 1
    failed = outage["failed_attempts"]
    assert failed == summary["counts"]["connect_failures"] >= callers
    # Without backoff across calls this was ~6 attempts per caller per second.
    rate = failed / callers / (up_at - down_at)
    assert rate <= 2.0, (failed, rate)
    assert f"connection failures: {failed} of " in out


def test_a_silent_and_garbling_agent_is_counted_once_everywhere(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    metrics_port = free_port()
    agent = AgentProcess(
        "--latency-ms", "600", "--seed", "3",
        "--fault", "silent=0.35", "--fault", "malformed_json=0.3", "--fault", "binary_garbage=0.3",
    )  # fmt: skip
    reports = tmp_path / "reports"
    try:
        run = start_run(
            reports, espeak_cache_dir, "--ws-url", agent.url, "--users", "4",
            "--spawn-rate", "4", "--run-time", "24s", "--barge-in-rate", "0",
            "--turns-per-user", "1",  # short calls: each one's counters are in by the end
            "--first-byte-timeout-sec", "1.5", "--metrics-port", str(metrics_port),
            "--locust-args", "--metrics-linger 6",
        )  # fmt: skip
        wait_for_file(reports / "summary.json", timeout_s=90)
        time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            exposition = response.read().decode()
        returncode, out, err = finish(run, timeout_s=60)
        injected = {
            kind: agent.metric("voice_loadtest_agent_faults_injected_total", kind=kind)
            for kind in ("silent", "malformed_json", "binary_garbage")
        }
    finally:
        agent.stop()
    summary = summary_of(reports)
    counts = summary["counts"]
    failed_turns = counts["turns"] - counts["turns_ok"]
    # A silent turn fails once, as ttfb_timeout, and nothing else failed.
    assert failed_turns >= 1 and counts["failures"] == {"ttfb_timeout": failed_turns}
    assert failed_turns <= injected["silent"]
    stats = {row["Name"]: row for row in _csv_rows(reports, "locust_stats.csv")}
    assert int(stats["turn"]["Failure Count"]) == failed_turns
    assert int(stats["ttfb"]["Failure Count"]) == 0  # the turn row carries the cause
    assert int(stats["ttfb"]["Request Count"]) == summary["metrics"]["ttfb_ms"]["count"]
    failures = _csv_rows(reports, "locust_failures.csv")
    assert [(row["Name"], row["Error"], int(row["Occurrences"])) for row in failures] == [
        ("turn", "VoiceFailure('ttfb_timeout')", failed_turns)
    ]
    # The garbage is counted (calls cut by the end of the run may miss their last message).
    garbage = injected["malformed_json"] + injected["binary_garbage"]
    assert garbage - 4 <= counts["inbound_malformed"] <= garbage and garbage >= 3
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }
    target = (("target", summary["run"]["target"]),)
    malformed = (("kind", "inbound_malformed"), *target)
    assert (
        samples[("voice_loadtest_inbound_anomalies_total", malformed)]
        == counts["inbound_malformed"]
    )
    timeouts = (("error", "ttfb_timeout"), *target)
    assert samples[("voice_loadtest_errors_total", timeouts)] == failed_turns
    assert f"inbound_malformed={counts['inbound_malformed']}" in out
    assert returncode in (0, 1, 2) and "Traceback" not in err, err[-2000:]  # 2: a busy machine


def test_an_agent_that_breaks_the_protocol_fails_the_call_and_memory_stays_flat(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    breaker = RuleBreaker(after_frames=10)
    reports = tmp_path / "reports"
    try:
        run = start_run(
            reports, espeak_cache_dir, "--ws-url", breaker.url, "--users", "4",
            "--spawn-rate", "4", "--run-time", "12s",
        )  # fmt: skip
        children = wait_for_children(run.pid, 2)
        (worker,) = [p for p in children if role(p) == "worker"]
        peak_rss = 0
        while run.poll() is None:
            try:
                peak_rss = max(peak_rss, worker.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
        returncode, _, err = finish(run, timeout_s=60)
    finally:
        breaker.close()
    assert "Traceback" not in err, err[-3000:]
    expected = {
        "reserved_opcode": 1002,
        "oversized": 1009,
        "bad_utf8": 1007,
        "bad_close_code": 1002,
    }
    assert set(expected) == set(MISBEHAVIOURS)
    for misbehaviour, code in expected.items():
        codes = breaker.closes[misbehaviour]
        assert codes and set(codes) == {code}, breaker.closes
    assert peak_rss < 200 << 20, f"worker RSS peaked at {peak_rss >> 20} MiB"
    summary = summary_of(reports)
    calls_broken = sum(len(codes) for codes in breaker.closes.values())
    counts = summary["counts"]
    assert calls_broken - 4 <= counts["protocol_errors"] <= calls_broken
    assert set(counts["failures"]) == {"protocol_error"}
    assert counts["failures"]["protocol_error"] == counts["turns"] - counts["turns_ok"] >= 4
    assert returncode in (1, 2)  # every turn failed (or none could be judged)


def test_a_killed_worker_is_named_with_the_calls_it_lost(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    reports, metrics_port = tmp_path / "reports", free_port()
    slo = tmp_path / "slo.yaml"  # a busy test machine must not turn the verdict into invalid
    slo.write_text(
        "harness: {max_lateness_p99_ms: 5000, max_receive_lag_p99_ms: 5000, "
        "max_worker_cpu_percent: 100}\n"
    )
    run = start_run(
        reports, espeak_cache_dir, "--with-agent", "--agent-args",
        "--latency-ms 600 --log-level warning", "--users", "6", "--spawn-rate", "6",
        "--run-time", "28s", "--barge-in-rate", "0", "--metrics-port", str(metrics_port),
        "--slo", str(slo), workers=2,
    )  # fmt: skip
    children = wait_for_children(run.pid, 4)
    # Both workers have reported their calls to the master: the master knows what is in flight.
    until(lambda: master_sample(metrics_port, "voice_loadtest_calls_total") >= 6, 60, "calls")
    victim = next(p for p in children if role(p) == "worker")
    victim.kill()
    returncode, out, err = finish(run, timeout_s=90)
    assert "Traceback" not in err, err[-3000:]
    summary = summary_of(reports)
    (lost,) = summary["workers_lost"]
    assert lost["calls_in_flight"] >= 1 and lost["t_s"] >= 1
    assert summary["counts"]["worker_lost"] == lost["calls_in_flight"]
    assert "worker_lost" not in summary["counts"]["failures"]  # not the agent's failure
    assert summary["slo"]["verdict"] == "warn" and returncode == 0
    assert "went missing" in summary["slo"]["warnings"][0]
    assert f"worker lost: {lost['worker']} at " in out
    assert "Workers lost" in (reports / "summary.html").read_text()
