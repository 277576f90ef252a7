"""The master-scale and hot-path sections of the benchmark page, the master's verdict, the
simulated workers' report payload and the busy-machine refusal (pure, or in-process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import cli
from bench.master import _compare, master_carries
from bench.report_scale import hotpath_lines, master_lines
from loadtest.metrics.voice_stats import VoiceStats
from tests.conftest import REPO_ROOT


def _step(workers: int, *, cpu: float = 20.0, trip_p99: float = 10.0, exact: bool = True):
    return {
        "workers": workers, "callers": workers * 200, "reports": workers * 5,
        "report_bytes": 4400, "master_cpu_percent": cpu,
        "heartbeat_round_trip_ms": {"count": workers * 15, "p50": 2.0, "p99": trip_p99,
                                    "max": trip_p99 * 2},
        "scrape_ms": {"p50": 12.0, "max": 30.0}, "scrape_bytes": 80_000, "drain_s": 0.01,
        "summary_exact": exact, "mismatches": [] if exact else ["turns: summary 9, sent 10"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cpu", "trip", "exact", "carried"),
    [(20.0, 10.0, True, True), (85.0, 10.0, True, False), (20.0, 1500.0, True, False),
     (20.0, 10.0, False, False), (None, 10.0, True, False)],
)  # fmt: skip
def test_a_master_carries_a_step_only_when_exact_prompt_and_not_saturated(
    cpu: float | None, trip: float, exact: bool, carried: bool
) -> None:
    assert master_carries(_step(100, cpu=cpu, trip_p99=trip, exact=exact)) is carried  # type: ignore[arg-type]


def test_summary_comparison_names_every_count_that_differs() -> None:
    counters = {"turns": 10, "turns_ok": 9, "barge_attempts": 3, "frames_sent": 500,
                "frames_received": 250}  # fmt: skip
    sent = {"counters": counters, "errors": {"ttfb_timeout": 1}, "ttfb": 9}
    summary = {"counts": {"turns": 10, "turns_ok": 9, "barge_attempts": 3, "frames_sent": 500,
                          "frames_received": 250, "failures": {"ttfb_timeout": 1}},
               "metrics": {"ttfb_ms": {"count": 9}}}  # fmt: skip
    assert _compare(summary, sent) == []
    summary["counts"]["turns"] = 8
    summary["metrics"]["ttfb_ms"]["count"] = 7
    assert _compare(summary, sent) == [
        "turns: summary 8, sent 10", "ttfb samples: summary 7, sent 9"
    ]  # fmt: skip
    assert _compare({}, sent) == ["no summary written"]


def test_a_simulated_report_is_what_a_worker_ships_and_merges_like_one() -> None:
    # in a child interpreter: building it imports Locust, which monkey-patches on import
    code = (
        "import json, random\n"
        "from bench.mastersim import report_payload\n"
        "print(json.dumps(report_payload(200, random.Random(1))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(done.stdout)
    assert {"stats", "stats_total", "errors", "voice"} <= payload.keys()
    merged = VoiceStats()
    merged.merge(payload["voice"])
    merged.merge(payload["voice"])
    # 200 callers × 3 s at 50 frames/s, twice; a turn per caller every ~6 s
    assert merged.counters["frames_sent"] == 2 * 200 * 150
    assert merged.counters["turns"] == 2 * 100
    assert merged.histograms["frame_lateness_ms"].count == 2 * 200 * 150
    assert {scenario for (_, scenario) in merged.by_scenario} == {
        "insurance_inquiry", "quick_question"
    }  # fmt: skip
    names = {entry["name"] for entry in payload["stats"]}
    assert names == {"ttfb", "turn", "barge_in"}


def test_master_section_renders_the_limit_and_every_step() -> None:
    results: dict[str, Any] = {"master": {
        "callers_per_worker": 200, "report_window_s": 15.0, "master_cpus": [0],
        "steps": [_step(100), _step(500, exact=False),
                  {"workers": 1000, "callers": 200_000, "error": "no callers", "carried": False}],
        "max_workers": 100, "max_callers": 20_000}}  # fmt: skip
    for step in results["master"]["steps"][:2]:
        step["carried"] = master_carries(step)
    text = "\n".join(master_lines(results))
    assert "**One master carried 100 workers and 20,000 callers**" in text
    assert "| 100 | 20,000 | 20.0 | 2.0 / 10.0 / 20.0 |" in text
    assert "**differs**: turns: summary 9, sent 10" in text
    assert "**fails**: no callers" in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in rows}) == 1  # every row as wide as the header
    assert master_lines({}) == []


def test_hotpath_section_quotes_instructions_per_frame_or_why_not() -> None:
    hot = {"callers": 200, "seconds": 8.0, "frames": 40_000, "received": 4_500,
           "instructions_per_frame": 63_829}  # fmt: skip
    assert "**63,829 instructions per caller frame**" in "\n".join(hotpath_lines({"hotpath": hot}))
    skipped = "\n".join(hotpath_lines({"hotpath": {"skipped": "valgrind is not installed"}}))
    assert "Skipped: valgrind is not installed." in skipped


def test_bench_refuses_a_busy_machine_unless_forced_or_quick(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cpus = len(cli.os.sched_getaffinity(0))
    monkeypatch.setattr(cli.os, "getloadavg", lambda: (cli.MAX_LOAD_PER_CPU * cpus + 0.1, 0, 0))
    out = tmp_path / "benchmarks.md"
    assert cli.main(["--out", str(out), "--sections", "hotpath"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "busy" in err and "--force" in err
    assert not out.exists()  # nothing written, nothing replaced

    ran: list[str] = []
    monkeypatch.setattr(cli, "steal_probe", lambda cpus: 0.0)
    monkeypatch.setattr(
        cli, "hotpath_section", lambda *a: ran.append("hotpath") or {"skipped": "x"}
    )
    monkeypatch.setattr(cli, "_audio", lambda pcm_dir, work: pcm_dir)
    monkeypatch.setattr(cli, "python_speed", lambda: 1.0)
    assert cli.main(["--out", str(out), "--sections", "hotpath", "--force"]) == 0
    assert ran == ["hotpath"] and "load average" in out.read_text().lower()


def test_bench_refuses_a_machine_whose_hypervisor_takes_its_cpus_unless_forced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(cli, "steal_probe", lambda cpus: cli.MAX_STEAL_PERCENT + 0.5)
    out = tmp_path / "benchmarks.md"
    assert cli.main(["--out", str(out), "--sections", "hotpath"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hypervisor" in err and "--force" in err
    assert not out.exists()

    monkeypatch.setattr(cli, "hotpath_section", lambda *a: {"skipped": "x"})
    monkeypatch.setattr(cli, "_audio", lambda pcm_dir, work: pcm_dir)
    monkeypatch.setattr(cli, "python_speed", lambda: 1.0)
    assert cli.main(["--out", str(out), "--sections", "hotpath", "--force"]) == 0
    machine = json.loads(out.read_text().split("```json\n", 1)[1].split("\n```", 1)[0])["machine"]
    assert machine["steal_probe_percent"] == cli.MAX_STEAL_PERCENT + 0.5


def test_steal_is_read_from_the_kernel_per_cpu_and_as_a_share_of_their_time() -> None:
    from bench.measure import cpu_ticks, steal_percent
    from bench.procs import steal_probe

    everything, first = cpu_ticks(), cpu_ticks({min(cli.os.sched_getaffinity(0))})
    assert everything is not None and first is not None
    assert 0 <= first[0] <= everything[0] and 0 < first[1] < everything[1]
    assert steal_percent((10, 1000), (30, 2000)) == 2.0
    assert steal_percent(None, (1, 2)) is None and steal_percent((5, 100), (5, 100)) is None
    probed = steal_probe(sorted(cli.os.sched_getaffinity(0)), seconds=0.3)
    assert probed is not None and 0.0 <= probed <= 100.0


def test_gc_pauses_count_passes_per_generation_and_reset_when_taken() -> None:
    import gc

    from bench.measure import GcPauses

    pauses = GcPauses()
    try:
        pauses.take()
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
        taken = pauses.take()
        assert taken["passes"][0] >= 1 and taken["passes"][2] >= 2
        assert 0 <= taken["max_ms"] <= taken["total_ms"] + 0.01
        assert pauses.take()["passes"] == [0, 0, 0]
    finally:
        gc.callbacks.remove(pauses._callback)


def test_capacity_table_shows_full_collections_and_the_longest_pause() -> None:
    from bench.report import render_markdown

    step = {"callers": 800, "window_s": 10.0, "cpu_percent": 70.0, "cpu_system_percent": 20.0,
            "agent_cpu_percent": 50.0, "frames": 400_000, "frames_target": 400_000,
            "frame_rate_ratio": 1.0, "lateness_ms": {"p50": 0.5, "p99": 1.2, "max": 3.0},
            "receive_lag_ms": {"p50": 0.2, "p99": 14.8, "max": 15.0},
            "ttfb_ms": {"count": 5, "p50": 601.0, "p99": 602.0}, "rss_kb": 120_000,
            "gc": {"passes": [900, 80, 1], "max_ms": 14.2, "total_ms": 60.0}}  # fmt: skip
    results = {"capacity": {"agent_cpus": [0], "worker_cpus": [1], "pinned": True,
                            "steps": [step], "callers_per_core": 0}, "settings": {}}  # fmt: skip
    assert "| 601.0 | 1 (14.2) | – | **fails** |" in render_markdown(results)


def test_master_targets_are_judged_against_the_largest_step_carried() -> None:
    from bench.report import render_markdown

    results = {"targets": {"master_workers": 500.0, "master_callers": 200_000.0},
               "master": {"max_workers": 1000, "max_callers": 100_000, "steps": [],
                          "callers_per_worker": 100, "report_window_s": 15.0,
                          "master_cpus": [0]}}  # fmt: skip
    text = render_markdown(results)
    assert "| one master carries ≥ 500 workers | 1000 | met |" in text
    assert "| one master carries ≥ 200000 callers | 100000 | **not met** |" in text


def test_the_capacity_run_gives_the_worker_one_cpu_and_the_agent_every_other() -> None:
    from bench.sections import capacity_cpus

    assert capacity_cpus([0, 1]) == ({0}, {1})
    assert capacity_cpus([0, 1, 2, 3]) == ({0, 1, 2}, {3})
    assert capacity_cpus([5]) == (None, None)


_FORKING_AGENT = """
import os, time
for _ in range(2):
    if os.fork() == 0:
        end = time.process_time() + 0.5
        while time.process_time() < end:
            pass
        time.sleep(30)
        os._exit(0)
time.sleep(30)
"""


def test_agent_cpu_counts_its_child_processes_and_how_many_serve() -> None:
    """The simulator's --processes N forks N serving processes: their CPU is the agent's."""
    import time

    from bench.measure import agent_cpu_s

    parent = subprocess.Popen([sys.executable, "-c", _FORKING_AGENT], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        reading = agent_cpu_s(parent.pid)
        # each child spins 0.5 s: more than 0.8 s is both counted (/proc has 10 ms ticks)
        while reading is not None and reading[0] <= 0.8 and time.monotonic() < deadline:
            time.sleep(0.1)
            reading = agent_cpu_s(parent.pid)
        assert reading is not None and reading[1] == 2 and reading[0] > 0.8, reading
    finally:
        cli.os.killpg(parent.pid, 9)  # the children too: they are in its session
        parent.wait()
    assert agent_cpu_s(None) is None
