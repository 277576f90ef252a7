"""`voice-loadtest compare` and `run --baseline` on real runs: a real master and worker against
the agent simulator at 600 ms, again at 800 ms (compared with the first through --baseline),
and once with other scenarios. The gate reports TTFB p50 +200 ms, exits 1 on a rule that
catches it and 0 without one; runs that played different scenarios are refused (exit 2)
unless --force."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Harness limits wide open: these tests are about the comparison, and a busy test host must
# not turn a run INVALID (exit 2) where the gate's exit 1 is expected.
_SLO = (
    "harness: {max_lateness_p99_ms: 1000, max_receive_lag_p99_ms: 1000, "
    "max_worker_cpu_percent: 100}\n"
)


def _one_scenario(source: Path, scenario: str, target: Path) -> Path:
    """A copy of the audio cache ``source`` holding only ``scenario``."""
    target.mkdir()
    lines = []
    for line in (source / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["scenario"] == scenario:
            shutil.copy(source / entry["filename"], target / entry["filename"])
            lines.append(line)
    (target / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return target


@dataclass
class Runs:
    root: Path
    fast: Path  # summary of the 600 ms run
    slow: Path  # summary of the 800 ms run (run with --baseline fast)
    slow_run: subprocess.CompletedProcess[str]
    other: Path  # summary of a 600 ms run that played other scenarios


def _run(root: Path, name: str, cache: Path, latency_ms: int, *extra: str) -> Any:
    reports = root / name
    command = [
        sys.executable, "-m", "loadtest", "run", "--with-agent",
        "--agent-args", f"--latency-ms {latency_ms}", "--workers", "1", "--users", "4",
        "--spawn-rate", "4", "--run-time", "18s", "--reports-dir", str(reports),
        "--pcm-dir", str(cache), "--greeting", "off", "--chunks-per-turn", "40",
        "--seed", "9", "--metrics-port", "0", "--slo", str(root / "slo.yaml"), *extra,
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=180, cwd=root, env=dict(os.environ)
    )
    return done, reports / "summary.json"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, espeak_cache_dir: Path) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("compare")
    (root / "slo.yaml").write_text(_SLO)
    quick = _one_scenario(espeak_cache_dir, "quick_question", root / "quick")
    insurance = _one_scenario(espeak_cache_dir, "insurance_inquiry", root / "insurance")
    done, fast = _run(root, "fast", quick, 600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    slow_run, slow = _run(root, "slow", quick, 800, "--baseline", str(fast),
                          "--fail-on", "ttfb_p50_ms>+10%")  # fmt: skip
    done, other = _run(root, "other", insurance, 600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield Runs(root, fast, slow, slow_run, other)


def _compare(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest", "compare", *args],
        capture_output=True, text=True, timeout=60, cwd=root,
    )  # fmt: skip


def test_compare_reports_the_added_latency_and_gates_on_it(runs: Runs) -> None:
    plain = _compare(runs.root, str(runs.fast), str(runs.slow))
    assert plain.returncode == 0, plain.stdout + plain.stderr
    match = re.search(r"ttfb_p50_ms\s+([\d,.]+)\s+([\d,.]+)\s+\+([\d,.]+) ms", plain.stdout)
    assert match, plain.stdout
    base, new, change = (float(g.replace(",", "")) for g in match.groups())
    assert abs(base - 600) <= 15 and abs(new - 800) <= 15
    assert abs(change - 200) <= 10, plain.stdout
    html = runs.root / "compare.html"
    gated = _compare(runs.root, str(runs.fast), str(runs.slow), "--fail-on",
                     "ttfb_p50_ms>+10%", "--html", str(html))  # fmt: skip
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert re.search(r"ttfb_p50_ms>\+10%\s+\+3\d\.\d %\s+REGRESSION", gated.stdout)
    page = html.read_text()
    assert 'id="plot-ttfb-distribution-overlay"' in page and 'id="gate-table"' in page
    # the slower run as baseline: the same rule does not fire
    assert _compare(runs.root, str(runs.slow), str(runs.fast), "--fail-on",
                    "ttfb_p50_ms>+10%").returncode == 0  # fmt: skip


def test_runs_with_different_scenarios_need_force(runs: Runs) -> None:
    refused = _compare(runs.root, str(runs.fast), str(runs.other))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "NOT COMPARABLE #1: different scenarios" in refused.stdout
    assert "quick_question" in refused.stdout and "insurance_inquiry" in refused.stdout
    forced = _compare(runs.root, str(runs.fast), str(runs.other), "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    # a folder of all three: ordered by start time, the first run is the baseline
    trend = runs.root / "trend.html"
    folder = _compare(runs.root, str(runs.root), "--force", "--html", str(trend))
    assert folder.returncode == 0, folder.stdout + folder.stderr
    order = re.findall(r"(fast|slow|other)/summary\.json", folder.stdout)[:3]
    assert order == ["fast", "slow", "other"]
    assert 'id="plot-trend-ttfb"' in trend.read_text()


def test_run_with_a_baseline_stores_the_comparison(runs: Runs) -> None:
    done = runs.slow_run
    # the SLO passes (800 ms is well under 2 s) but the baseline gate fires: exit 1
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(runs.slow.read_text())
    assert summary["slo"]["verdict"] == "pass"
    block = summary["baseline"]
    assert block["file"] == str(runs.fast) and block["comparable"] is True
    (regression,) = block["regressions"]
    assert regression["key"] == "ttfb_p50_ms" and 25 <= regression["change"] <= 42
    row = next(r for r in block["rows"] if r["key"] == "ttfb_p50_ms")
    assert abs(row["change"] - 200) <= 10
    report = (runs.slow.parent / "summary.html").read_text()
    assert 'id="section-baseline"' in report and 'id="baseline-table"' in report
    assert 'id="plot-ttfb-distribution-overlay"' in report
    assert "REGRESSION (exit code 1)" in done.stdout
