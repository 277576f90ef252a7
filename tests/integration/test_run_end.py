"""A real distributed run that ends mid-turn: every answer is counted once, in every output.

`voice-loadtest run` (a real Locust master and two worker processes) against the agent
simulator, timed so that the run time ends while every caller is still speaking its first
turn: each caller barges into the agent's greeting early on (a barge-in inside the run time),
then speaks an 8 s utterance whose answer can only arrive after the run time, during the stop
grace. The summary JSON, Locust's CSV, the master's Prometheus ``/metrics`` (kept up by
``--metrics-linger``) and the workers' per-turn logs must then agree on the number of TTFBs
and barge-ins, and the summary must say how many answers came after the run time.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.procutil import free_port
from tests.integration.realtime_client import AgentProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CALLERS = 8


def _scrape_final(
    port: int, deadline_s: float
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The master's /metrics once the verdict is out (the run's final values)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                text = reply.read().decode()
        except (urllib.error.URLError, OSError):
            text = ""
        if "voice_loadtest_slo_verdict" in text:
            samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            return samples
        time.sleep(0.2)
    raise AssertionError("the master never served its final /metrics")


def _total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric: str, **labels: str
) -> float:
    return sum(
        v for (n, ls), v in samples.items() if n == metric and labels.items() <= dict(ls).items()
    )


def test_every_answer_is_counted_once_in_every_output(
    tmp_path: Path, espeak_cache_dir: Path
) -> None:
    reports, metrics_port = tmp_path / "reports", free_port()
    with AgentProcess(
        "--latency-ms", "700", "--barge-latency-ms", "200", "--greeting-ms", "3000",
        "--response-ms", "800",
    ) as agent:  # fmt: skip
        run = subprocess.Popen(
            [sys.executable, "-m", "loadtest", "run", "--ws-url", agent.url,
             "--workers", "2", "--users", str(CALLERS), "--spawn-rate", str(CALLERS),
             "--run-time", "7s", "--pcm-dir", str(espeak_cache_dir),
             "--reports-dir", str(reports), "--metrics-port", str(metrics_port),
             "--greeting", "barge", "--turns-per-user", "1", "--barge-in-rate", "0",
             "--scenario-weights", "insurance_inquiry=1", "--seed", "3",
             "--turn-log", str(tmp_path / "turns-{pid}.jsonl"),
             "--locust-args", "--stop-timeout 20 --metrics-linger 8"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            prometheus = _scrape_final(metrics_port, 120)
            output, _ = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
        agent_calls = {str(e["call"]) for e in agent.logs if e.get("event") == "call open"}
    summary = json.loads((reports / "summary.json").read_text())
    with (reports / "locust_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    turns = [
        json.loads(line)
        for path in sorted(tmp_path.glob("turns-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert summary["rates"]["connection_success"] == 1.0, output[-3000:]

    counts, metrics = summary["counts"], summary["metrics"]
    # The run time ended mid-turn for every caller: all answers came during the stop grace.
    assert counts["after_run_time"] == metrics["ttfb_ms"]["count"] == CALLERS, output[-3000:]
    assert counts["turns"] == counts["turns_ok"] == CALLERS and counts["turns_cut"] == 0
    assert f"after the run time: {CALLERS} TTFB(s)" in output

    # TTFB: summary, Locust's CSV, Prometheus (histogram and Locust's row) and the turn log
    ttfb_csv = int(rows["ttfb"]["Request Count"]) - int(rows["ttfb"]["Failure Count"])
    ttfb_prom = _total(prometheus, "voice_loadtest_ttfb_seconds_count")
    ttfb_prom_locust = _total(prometheus, "voice_loadtest_locust_requests_total", name="ttfb")
    ttfb_log = sum(1 for t in turns if t["ttfb_ms"] is not None)
    assert ttfb_csv == ttfb_prom == ttfb_prom_locust == ttfb_log == CALLERS
    assert int(rows["ttfb"]["Failure Count"]) == 0

    # barge-in: successful ones and attempts
    barges = [t["barge"] for t in turns if t["barge"] is not None]
    barge_csv = int(rows["barge_in"]["Request Count"])
    assert counts["barge_attempts"] == barge_csv == CALLERS
    assert _total(prometheus, "voice_loadtest_barge_ins_total") == CALLERS
    assert _total(prometheus, "voice_loadtest_locust_requests_total", name="barge_in") == CALLERS
    barge_ok = metrics["barge_in_ms"]["count"]
    assert barge_ok == _total(prometheus, "voice_loadtest_barge_in_seconds_count") == CALLERS
    assert barge_ok == sum(1 for b in barges if b["latency_ms"] is not None)
    assert summary["rates"]["turn_success"] == 1.0

    # one file per worker; every line names a call the agent logged (its connection id)
    assert len(list(tmp_path.glob("turns-*.jsonl"))) == 2
    assert {t["call_id"] for t in turns} <= agent_calls and len(turns) == CALLERS
