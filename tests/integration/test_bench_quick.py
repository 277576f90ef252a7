"""`python -m bench --quick` end to end: real agent, real caller workers, real Locust.

Keeps the benchmark from rotting: every section runs and its output is complete and sane. It
never asserts speed — CI machines are shared and slow; the figures are for `make bench`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def test_quick_bench_writes_complete_sane_results(tmp_path: Path, espeak_cache_dir: Path) -> None:
    out, raw = tmp_path / "benchmarks.md", tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--json", str(raw),
         "--pcm-dir", str(espeak_cache_dir), "--logs", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(raw.read_text())
    assert results["quick"] is True
    assert results["machine"]["cpus"] >= 1 and results["machine"]["cpu_model"]

    steps = results["capacity"]["steps"]
    assert [s["callers"] for s in steps][:1] == [50]
    for step in steps:
        assert step["frames"] > 0 and step["frames_target"] > 0
        assert 0.5 < step["frame_rate_ratio"] < 1.5
        assert _finite(step["cpu_percent"]) and step["cpu_percent"] > 0
        assert 0 <= step["lateness_ms"]["p50"] <= step["lateness_ms"]["p99"]
        assert step["lateness_ms"]["p99"] <= step["lateness_ms"]["max"]
        assert step["rss_kb"] > 0
    assert isinstance(results["capacity"]["callers_per_core"], int)

    # Accuracy: harness turns were matched to the agent's ground truth, with sane errors
    # (harness − truth is the transit both ways: never hugely negative, never absurd).
    accuracy = results["accuracy"]
    assert accuracy["harness_turns"] > 0 and accuracy["agent_turns"] > 0
    matched = [lv for lv in accuracy["levels"] if lv["ttfb_error_ms"]["count"]]
    assert matched, accuracy
    for level in matched:
        assert -25 < level["ttfb_error_ms"]["p50"] < 1000
        assert level["unmatched"] <= level["ttfb_error_ms"]["count"]
    # the same over TLS: the agent serving wss:// with a throw-away CA the callers trust
    tls = accuracy["tls"]
    assert tls["callers"] == (results["capacity"]["callers_per_core"] or 50)
    assert tls["ttfb_error_ms"]["count"] > 0 and -25 < tls["ttfb_error_ms"]["p50"] < 1000
    assert tls["step"]["frames"] > 0

    cost = results["cost"]
    assert _finite(cost["rss_kb_per_caller"]) and cost["rss_mb_start"] > 0

    if results["machine"]["cpus_usable"] >= 2:
        configs = results["scale_out"]["configs"]
        assert [c["workers"] for c in configs] == [1, 2]
        assert all(c["steps"] and c["steps"][0]["frames"] > 0 for c in configs)
        assert results["agent"]["steps"] and results["agent"]["steps"][0]["calls"] > 0

    cold = results["cold_start"]["without_pull"]
    assert cold["median_ms"] is not None and 0 < cold["median_ms"] < 120_000
    pull = results["cold_start"]["with_pull"]
    assert "skipped" in pull or pull["median_ms"] > cold["median_ms"] / 10

    # Master scale: a real master and simulated workers; only correctness is asserted — the
    # summary the master wrote counts exactly what the workers reported
    master = results["master"]["steps"]
    assert master and all(step.get("summary_exact") for step in master), master
    assert master[0]["reports"] > 0 and master[0]["heartbeat_round_trip_ms"]["count"] > 0
    assert master[0]["scrape_bytes"] > 0

    text = out.read_text()
    for heading in ("# Benchmarks", "## Machine", "## Capacity", "## Accuracy", "## Cold start",
                    "## Master scale"):  # fmt: skip
        assert heading in text
    assert "python -m bench --quick" in text
