"""docs/benchmarks.md rendering, the profile grouping and the bench command line (pure)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from bench.cli import _plan, _targets, add_bench_arguments, run_bench
from bench.procs import python_speed
from bench.profile import categorize
from bench.report import headline, render_markdown


def _q(p50: float, p99: float, mx: float, n: int = 10) -> dict[str, Any]:
    return {"count": n, "p50": p50, "p99": p99, "max": mx, "min": 0.0}


def _step(callers: int, p99: float, agent_cpu: float = 50.0) -> dict[str, Any]:
    return {
        "callers": callers, "window_s": 10.0, "cpu_percent": callers / 10,
        "cpu_system_percent": callers / 40, "agent_cpu_percent": agent_cpu,
        "frames": callers * 500, "frames_target": callers * 500, "frame_rate_ratio": 1.0,
        "lateness_ms": {"p50": 0.5, "p99": p99, "max": p99 * 2},
        "receive_lag_ms": {"p50": 0.2, "p99": 1.0, "max": 2.0},
        "ttfb_ms": {"count": 5, "p50": 600.5, "p99": 601.0}, "rss_kb": 90000 + callers * 40,
    }  # fmt: skip


def _level(callers: int) -> dict[str, Any]:
    return {
        "callers": callers, "holds": True, "ttfb_error_ms": _q(0.4, 1.2, 1.5),
        "ttfb_abs_error_ms": _q(0.4, 1.2, 1.5), "caller_to_agent_ms": _q(0.2, 0.5, 0.6),
        "agent_to_caller_ms": _q(0.2, 0.7, 0.9), "barge_in_error_ms": _q(0.5, 1.4, 1.6, 3),
        "barge_in_abs_error_ms": _q(0.5, 1.4, 1.6, 3), "matched_by_index": 10,
        "matched_by_time": 0, "unmatched": 0,
    }  # fmt: skip


def _results(quick: bool = False, last_agent_cpu: float = 50.0) -> dict[str, Any]:
    steps = [_step(200, 1.0), _step(500, 3.0), _step(700, 9.0, last_agent_cpu)]
    steps[2]["steal_percent"] = 1.5
    return {
        "schema": 1, "command": "python -m bench", "quick": quick, "duration_s": 400.0,
        "machine": {"date": "2026-01-01T00:00:00+00:00", "cpus": 2, "cpus_usable": 2,
                    "cpu_model": "Test CPU", "python": "3.11.7", "platform": "Linux",
                    "load_average": [0.1, 0.1, 0.1], "load_average_end": [1.0, 0.5, 0.2],
                    "python_speed": 5.61, "python_speed_end": 4.8, "packages": {"gevent": "1"},
                    "python_speed_swing": [2.4, 5.5, 5.7],
                    "steal_probe_percent": 0.4, "steal_percent": 3.2},
        "settings": {"steps": [200, 500, 700], "step_s": 10.0, "settle_s": 4.0,
                     "agent_args": "--latency-ms 600", "greeting": "off"},
        "capacity": {"agent_cpus": [0], "worker_cpus": [1], "pinned": True, "steps": steps,
                     "callers_per_core": 500},
        "accuracy": {"levels": [_level(200), _level(500), _level(700)]},
        "cost": {"cpu_ms_per_caller_s": 1.2, "cpu_fixed_percent": 5.0, "rss_kb_per_caller": 40.0,
                 "rss_mb_per_100_callers": 3.9, "rss_mb_start": 88.0, "per_step": []},
        "scale_out": {"agent_cpus": "unpinned", "per_worker_steps": [120, 250], "ratio": 2.0,
                      "configs": [{"workers": 1, "worker_cpus": [1], "held": 250, "steps": []},
                                  {"workers": 2, "worker_cpus": [1, 0], "held": 500,
                                   "steps": []}]},
        "agent": {"command": "python -m bench.agent", "criteria": "p99 <= 20 ms",
                  "max_calls_held_one_core": 1000, "steps": []},
        "cold_start": {"without_pull": {"runs_ms": [900.0], "median_ms": 900.0},
                       "with_pull": {"skipped": "no Blob Storage"}},
        "profile": {"skipped": "py-spy is not installed"},
    }  # fmt: skip


def test_headline_quotes_capacity_and_accuracy_at_capacity() -> None:
    text = headline(_results())
    assert "**500 real-time callers**" in text
    assert "1.20 ms (p99)" in text and "1.40 ms" in text


def test_markdown_has_every_section_the_machine_and_the_raw_json() -> None:
    text = render_markdown(_results())
    for heading in ("# Benchmarks", "## Machine", "## Capacity",
                    "## Accuracy", "## CPU and memory", "## Scale-out", "## Agent simulator",
                    "## Cold start", "## What limits"):  # fmt: skip
        assert heading in text
    assert "## Targets" not in text, "no targets given, none judged"
    assert "(performance.md)" in text
    assert "Test CPU" in text and "`python -m bench`" in text
    assert "compare runs) | 5.61 → 4.8 |" in text
    assert "(steal): start probe, all CPUs busy → whole run | 0.4 % → 3.2 % |" in text
    assert "| worker CPU stolen % |" in text and "| 1.5 | **fails** |" in text
    assert "| – | holds |" in text  # a step recorded before steal was measured
    assert "| 500 | 50.0 (12.5) |" in text
    assert "Skipped: no Blob Storage." in text
    raw = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(raw)["capacity"]["callers_per_core"] == 500


def test_the_targets_judged_are_the_ones_given_on_the_command_line() -> None:
    args = _args("--target-callers-per-core", "600", "--target-kb-per-caller", "50",
                 "--target-error-p99-ms", "1.3", "--target-scale-out", "1.9")  # fmt: skip
    results = {**_results(), "targets": _targets(args)}
    results["scale_out"]["judged"] = False
    text = render_markdown(results)
    assert "| real-time callers per worker core ≥ 600 | 500 | **not met** |" in text
    assert "| memory per caller ≤ 50 KB | 40.0 KB | met |" in text
    # the worse of TTFB (1.2) and barge-in (1.4) error p99 at the capacity figure
    assert (
        "| TTFB and barge-in error p99 at the capacity figure ≤ 1.3 ms | 1.40 ms | **not met** |"
        in text
    )
    assert "| 2 workers carry ≥ 1.9× the callers of 1 | 2.00× | not judged: needs ≥ 3 CPUs" in text
    assert "agent simulator" not in text.split("## Targets")[1].split("##")[0]


def test_a_target_must_be_a_positive_number() -> None:
    with pytest.raises(SystemExit):
        _args("--target-callers-per-core", "0")
    with pytest.raises(SystemExit):
        _args("--target-kb-per-caller", "lots")


def test_the_page_names_no_project_history() -> None:
    text = render_markdown({**_results(), "targets": {"callers_per_core": 500.0}})
    assert "issue" not in text.lower()


def test_from_json_renders_an_earlier_run_without_measuring(tmp_path: Path) -> None:
    raw, out = tmp_path / "bench.json", tmp_path / "page.md"
    raw.write_text(json.dumps(_results()))
    assert run_bench(_args("--from-json", str(raw), "--out", str(out))) == 0
    assert out.read_text() == render_markdown(_results())
    assert run_bench(_args("--from-json", str(tmp_path / "missing.json"), "--out", str(out))) == 2
    raw.write_text('{"capacity": {"steps": [{"x": 1}]}}')  # JSON, but not a benchmark result
    assert run_bench(_args("--from-json", str(raw), "--out", str(out))) == 2

    # the capacity figure is judged again from the recorded steps, as the table's verdicts are
    earlier = _results()
    earlier["capacity"]["steps"].insert(0, {**_step(100, 5.08), "steal_percent": 3.3})
    earlier["capacity"]["callers_per_core"] = 0  # what a version without that rule recorded
    raw.write_text(json.dumps(earlier))
    assert run_bench(_args("--from-json", str(raw), "--out", str(out))) == 0
    assert "**Capacity: 500 callers per core.**" in out.read_text()


def test_a_page_renders_again_from_the_results_it_embeds(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(render_markdown(_results()))
    assert run_bench(_args("--from-json", str(page), "--out", str(page))) == 0
    assert page.read_text() == render_markdown(_results())
    page.write_text("# Benchmarks\n\nno results here\n")
    assert run_bench(_args("--from-json", str(page), "--out", str(tmp_path / "out.md"))) == 2


def test_every_table_row_has_as_many_cells_as_its_header() -> None:
    results = _results()
    results["scale_out"]["configs"][0]["steps"] = [
        {**_step(100, 1.0), "cpu_percent_max": 20.0}
    ]  # fmt: skip
    header_cells = 0
    for line in render_markdown(results).splitlines():
        if not line.startswith("|"):
            header_cells = 0
            continue
        cells = line.count("|") - 1
        if header_cells == 0:
            header_cells = cells
        assert cells == header_cells, line


def test_agent_bound_limit_is_called_out() -> None:
    assert "the agent simulator, not the caller worker" in render_markdown(
        _results(last_agent_cpu=97)
    )
    assert "the agent simulator, not the caller worker" not in render_markdown(_results())


def test_the_kernel_share_of_a_caller_and_the_ceiling_it_puts_on_a_core() -> None:
    results = _results()  # at the figure, 500 callers: 50 % of a core, 12.5 % of it system
    text = render_markdown(results)
    assert "(500 callers) each caller took 1.00 ms of CPU per second" in text
    assert "**0.25 ms in the kernel**" in text and "0.75 ms in user space" in text
    assert "would fill a core at about 4,000 callers" in text
    for step in results["capacity"]["steps"]:
        del step["cpu_system_percent"]  # a run recorded before the split was measured
    assert "in the kernel" not in render_markdown(results)


def test_the_cpu_slope_shows_what_each_step_cost_per_caller() -> None:
    results = _results()
    results["cost"]["per_step"] = [
        {"callers": 200, "cpu_ms_per_caller_s": 1.6, "rss_mb": 96.0},
        {"callers": 500, "cpu_ms_per_caller_s": 1.04, "rss_mb": 108.0},
    ]
    text = render_markdown(results)
    assert (
        "the line meets zero callers at 5.0 % of a core; each step's CPU per caller-second: "
        "1.60 ms at 200, 1.04 ms at 500 callers)."
    ) in text


def test_quick_runs_do_not_judge_targets() -> None:
    text = render_markdown({**_results(quick=True), "targets": {"callers_per_core": 100.0}})
    assert "Not judged" in text and "| met |" not in text


def test_profile_groups_samples_leaf_first() -> None:
    hub, serve = "Hub.run (gevent/hub.py:1)", "_Stream.serve (loadtest/runtime/caller.py:1)"
    raw = "\n".join([
        f"{hub};send (libc.so.6) 30",
        f"{serve};frames_due (loadtest/conversation/engine.py:1) 50",
        f"{hub};_on_readable (loadtest/runtime/caller.py:1);loads (json/__init__.py:1) 20",
    ])  # fmt: skip
    result = categorize(raw)
    assert result["samples"] == 100
    assert dict((name, share) for name, share in result["buckets"]) == {
        "conversation engine": 50.0, "send() system call": 30.0, "inbound classify (JSON)": 20.0,
    }  # fmt: skip
    assert categorize("")["samples"] == 0


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return parser.parse_args(list(argv))


def test_plans() -> None:
    quick = _plan(_args("--quick"))
    assert quick.steps == (50, 150) and "profile" not in quick.sections
    full = _plan(_args("--steps", "10,20", "--step-s", "3", "--sections", "capacity"))
    assert full.steps == (10, 20) and full.step_s == 3 and full.sections == ("capacity",)
    with pytest.raises(SystemExit):
        _plan(_args("--sections", "capacity,nope"))


def test_agent_section_lists_the_other_caller_audio() -> None:
    results = _results()
    step = {"calls": 1500, "cpu_percent": 71.5, "lateness_p50_ms": 1.0, "lateness_p99_ms": 5.0,
            "loop_lag_max_ms": 9.0, "audio_ratio": 1.0, "dropped": 0, "holds": True}  # fmt: skip
    results["agent"]["other_modes"] = {
        "none": {"command": "python -m bench.agent --caller-audio none",
                 "max_calls_held_one_core": 1500, "steps": [step]},
        "unique": {"command": "python -m bench.agent --caller-audio unique",
                   "max_calls_held_one_core": 0, "steps": [{**step, "holds": False}]},
    }  # fmt: skip
    text = render_markdown(results)
    assert "| callers send nothing (agent → caller audio only) | 1500 | 71.5 |" in text
    assert (
        "| comfort noise that never repeats (no decode is saved) | none (smallest step 1500) | – |"
        in text
    )


def test_agent_section_says_when_no_step_held() -> None:
    results = _results()
    step = {"calls": 500, "cpu_percent": 89.1, "lateness_p50_ms": 15.0, "lateness_p99_ms": 100.0,
            "loop_lag_max_ms": 107.0, "audio_ratio": 1.0, "dropped": 0, "holds": False}  # fmt: skip
    results["agent"]["steps"] = [step]
    results["agent"]["max_calls_held_one_core"] = 0
    text = render_markdown(results)
    assert "**No step held**: the smallest, 500 calls, failed" in text
    assert "0 concurrent calls per core" not in text


@pytest.mark.parametrize(("cpu", "edge"), [(99.0, True), (80.0, False)])
def test_agent_figure_says_how_much_of_the_core_it_took(cpu: float, edge: bool) -> None:
    results = _results()
    step = {"calls": 1000, "cpu_percent": cpu, "lateness_p50_ms": 2.0, "lateness_p99_ms": 10.0,
            "loop_lag_max_ms": 20.0, "audio_ratio": 1.0, "dropped": 0, "holds": True}  # fmt: skip
    failed = {**step, "calls": 1100, "cpu_percent": 100.0, "holds": False}
    results["agent"]["steps"] = [step, failed]
    text = render_markdown(results)
    assert f"The simulator used {cpu:.1f} % of its core there" in text
    assert ("the edge of the core, not headroom" in text) is edge


def test_python_speed_is_the_best_of_three_in_millions_per_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = iter([0.0, 0.5, 1.0, 1.2, 2.0, 2.4])  # three timings: 0.5 s, 0.2 s, 0.4 s
    monkeypatch.setattr("bench.procs.time.perf_counter", lambda: next(ticks))
    assert python_speed(100_000) == 0.5  # 100,000 iterations in the best 0.2 s


def test_an_agent_on_several_cpus_runs_one_process_each_and_says_so() -> None:
    results = _results()
    results["capacity"].update(agent_cpus=[0, 1, 2], worker_cpus=[3], agent_processes=3)
    text = render_markdown(results)
    assert "agent pinned to CPU [0, 1, 2] (3 processes; its CPU % is their mean)" in text
    assert "processes; its CPU" not in render_markdown(_results())  # one: nothing to say


def test_a_step_failed_while_the_host_took_its_cpu_says_so_and_does_not_end_the_count() -> None:
    results = _results()
    results["capacity"]["steps"].insert(0, {**_step(100, 5.08), "steal_percent": 3.3})
    text = render_markdown(results)
    assert "| 3.3 | not judged (3.3 % of its CPU stolen) |" in text
    assert "more than 2 % stolen is not judged" in text


def test_a_run_whose_every_step_was_stolen_from_says_it_has_no_capacity_figure() -> None:
    results = _results()
    for step in results["capacity"]["steps"]:
        step.update(lateness_ms={"p50": 0.5, "p99": 30.0, "max": 60.0}, steal_percent=5.0)
    results["capacity"]["callers_per_core"] = 0
    text = render_markdown(results)
    assert (
        "**Capacity: no figure.** No step held: 3 failed while the host took more than 2 %" in text
    )
    assert "**0 real-time callers**" not in text
    assert headline(results).startswith("No capacity figure: the host took the worker's CPU")


def test_a_first_step_that_failed_on_its_own_is_a_figure_even_if_later_ones_were_stolen() -> None:
    results = _results()
    steps = results["capacity"]["steps"]
    steps[0].update(lateness_ms={"p50": 0.5, "p99": 30.0, "max": 60.0})  # no steal: judged
    for step in steps[1:]:
        step.update(lateness_ms={"p50": 0.5, "p99": 30.0, "max": 60.0}, steal_percent=5.0)
    results["capacity"]["callers_per_core"] = 0
    assert "**Capacity: 0 callers per core.**" in render_markdown(results)
    assert "No capacity figure" not in headline(results)


def test_the_accuracy_over_tls_is_a_row_of_its_own_quoted_in_the_headline() -> None:
    results = _results()
    tls = {**_level(500), "ttfb_abs_error_ms": _q(0.6, 1.9, 2.5), "step": _step(500, 2.0)}
    results["accuracy"]["tls"] = tls
    text = render_markdown(results)
    row = next(line for line in text.splitlines() if line.startswith("| 500 over wss:// |"))
    assert "| 0.40 / 1.20 / 1.50 |" in row  # the signed error's quantiles, as on every row
    assert "a run of its own at 500 callers over TLS" in text
    assert "The worker used 50.0 % of its CPU there" in text and "holds)" in text
    assert "over TLS (wss://) within 1.90 ms and 1.40 ms" in headline(results)
    results["accuracy"]["tls"] = {**tls, "callers": 200}  # not at the capacity figure
    assert "over TLS" not in headline(results)


def test_the_machine_shows_how_far_its_speed_moves_within_a_second() -> None:
    row = next(line for line in render_markdown(_results()).splitlines() if "3 ms blocks" in line)
    assert row.endswith("| 2.4 / 5.5 / 5.7 |")
