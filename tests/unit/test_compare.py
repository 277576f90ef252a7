"""Run comparison: quantities, changes, comparability, the --fail-on gate and its exit codes."""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from loadtest.errors import ConfigError
from loadtest.metrics.compare import Run, compare, quantities
from loadtest.metrics.compare_cli import add_compare_arguments, run_compare
from loadtest.metrics.compare_gate import baseline_block, judge, parse_fail_on, verdict
from loadtest.metrics.compare_report import format_comparison, render_comparison
from loadtest.metrics.report import render_report
from tests.unit.test_report import _parse, realistic_summary


def _pair(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    base = realistic_summary()
    new = copy.deepcopy(base)
    new["run"]["started_at"] = "2025-03-05T10:15:00+00:00"
    for path, value in changes.items():
        node = new
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return base, new


def _compare(base: dict[str, Any], *others: dict[str, Any]) -> Any:
    runs = [Run("base.json", base)] + [Run(f"new{i}.json", s) for i, s in enumerate(others)]
    return compare(runs)


def test_every_part_of_the_summary_is_a_quantity() -> None:
    summary = realistic_summary()
    summary["counts"]["after_run_time"] = 3  # a key added to the summary later
    summary["scenarios"] = {"quick": {"turns": 10, "turn_success": 0.9,
                                      "ttfb_ms": {"count": 9, "p50": 700.0}}}  # fmt: skip
    rows = {row.key: row for row in quantities(summary)}
    assert rows["ttfb_p95_ms"].values == (1730.5,) and rows["ttfb_p95_ms"].unit == "ms"
    assert rows["ttfb_count"].unit == "count" and rows["ttfb_mean_ms"].shown is False
    assert rows["turn_success"].unit == "ratio" and rows["turn_success"].worse == -1
    assert rows["failures"].values == (177.0,) and rows["failures"].worse == 1
    assert rows["failures.first_byte_timeout"].values == (131.0,)
    assert rows["after_run_time"].values == (3.0,)
    assert rows["frame_lateness_p99_ms"].values == (4.87,)
    assert rows["worker_cpu_max"].values == (72.5,)
    assert rows["ttfb_p50_ms@quick"].values == (700.0,)
    assert rows["turn_success@quick"].unit == "ratio"


def test_changes_in_ms_percent_and_points() -> None:
    base, new = _pair(rates__turn_success=0.9412)
    new["metrics"]["ttfb_ms"]["p50"] = 1012.0
    comparison = _compare(base, new)
    ttfb = comparison.row("ttfb_p50_ms")
    assert ttfb.change(1) == pytest.approx(200.0)
    assert ttfb.change_pct(1) == pytest.approx(200 / 812 * 100)
    assert comparison.row("turn_success").change(1) == pytest.approx(-2.0)  # points
    assert comparison.row("ttfb_p95_ms").change(1) == 0


def test_a_quantity_only_one_run_has_is_n_a() -> None:
    base, new = _pair()
    del new["metrics"]["talk_over_ms"]
    new["metrics"]["ttfb_ms"] = "garbage"
    new["rates"] = None
    comparison = _compare(base, new)
    row = comparison.row("talk_over_p50_ms")
    assert row.values == (120.0, None) and row.change(1) is None and row.change_pct(1) is None
    assert comparison.row("ttfb_p50_ms").values[1] is None
    assert "n/a" in format_comparison(comparison)


def test_a_zero_baseline_changes_by_infinity_percent() -> None:
    base, new = _pair()
    base["counts"]["reconnects"], new["counts"]["reconnects"] = 0, 4
    row = _compare(base, new).row("reconnects")
    assert row.change(1) == 4 and row.change_pct(1) == math.inf


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ttfb_p95_ms>>10%", "cannot read"),
        ("ttfb_p95_ms>+10 seconds", "cannot read"),
        ("turn_success<-1ms", "not in milliseconds"),
        ("ttfb_p95_ms>+1pt", "not a success rate"),
        ("turn_success<-0.01", "say pt"),
        ("ttfb_p59_ms>+10%", "did you mean ttfb_p99_ms"),
        (" , ", "no rules"),
    ],
)
def test_bad_rules_are_one_line_errors(text: str, message: str) -> None:
    units = _compare(*_pair()).units
    with pytest.raises(ConfigError, match=message) as caught:
        parse_fail_on(text, units)
    assert "\n" not in str(caught.value)


def test_the_gate_fires_only_past_its_threshold() -> None:
    base, new = _pair(rates__turn_success=0.9412)
    new["metrics"]["ttfb_ms"]["p95"] = 1730.5 * 1.09  # +9 %: under the +10 % rule
    new["metrics"]["barge_in_ms"]["p95"] = 433.0 + 51  # +51 ms: over the +50 ms rule
    comparison = _compare(base, new)
    rules = parse_fail_on(
        "ttfb_p95_ms>+10%,barge_in_p95_ms>+50ms,turn_success<-1pt,greeting_p99_ms>=+0ms",
        comparison.units,
    )
    status = {f.rule: f.status for f in judge(comparison, rules)}
    assert status == {
        "ttfb_p95_ms>+10%": "ok",
        "barge_in_p95_ms>+50ms": "regression",
        "turn_success<-1pt": "regression",
        "greeting_p99_ms>=+0ms": "regression",  # unchanged, and >= 0 holds
    }
    assert verdict(comparison, judge(comparison, rules), force=False) == 1
    assert verdict(comparison, judge(comparison, rules[:1]), force=False) == 0


def test_missing_data_is_no_data_not_a_regression() -> None:
    base, new = _pair()
    new["metrics"]["barge_in_ms"] = {"count": 0, "p95": None}
    comparison = _compare(base, new)
    (finding,) = judge(comparison, parse_fail_on("barge_in_p95_ms>+1ms", comparison.units))
    assert finding.status == "no_data" and verdict(comparison, [finding], force=False) == 0


def test_different_scenarios_or_audio_are_not_comparable_unless_forced() -> None:
    base, new = _pair()
    base["scenarios"] = {"insurance_inquiry": {"turns": 3}, "quick_question": {"turns": 2}}
    new["scenarios"] = {"quick_question": {"turns": 4}}
    comparison = _compare(base, new)
    (reasons,) = comparison.not_comparable
    assert reasons and "different scenarios" in reasons[0]
    assert verdict(comparison, (), force=False) == 2
    assert verdict(comparison, (), force=True) == 0
    # the run's own record of what it played wins over the per-scenario stats
    base["run"]["scenarios"] = new["run"]["scenarios"] = ["quick_question"]
    base["run"]["audio_cache"], new["run"]["audio_cache"] = ["sha256:aa"], ["sha256:bb"]
    (reasons,) = _compare(base, new).not_comparable
    assert len(reasons) == 1 and "different audio" in reasons[0]
    same = copy.deepcopy(base)
    assert _compare(base, same).not_comparable == ((),)


def test_settings_that_differ_name_the_host_never_the_url() -> None:
    base, new = _pair()
    base["run"]["target"] = "wss://agent-a.example.com/media?token=SECRET1"
    new["run"]["target"] = "wss://agent-b.example.com:8443/media?token=SECRET2"
    new["run"]["users"] = 80
    new["settings"]["PROTOCOL"] = "twilio"
    settings = dict(_compare(base, new).settings)
    assert settings["agent host"] == ("agent-a.example.com", "agent-b.example.com:8443")
    assert settings["users"] == ("60", "80") and settings["PROTOCOL"] == ("n/a", "twilio")
    assert "workers" not in settings
    text = format_comparison(_compare(base, new))
    assert "SECRET" not in text and "SECRET" not in render_comparison(_compare(base, new))


def test_comparison_page_escapes_overlays_and_trends() -> None:
    base, new = _pair()
    third = copy.deepcopy(new)
    third["run"]["started_at"] = "2025-03-06T10:15:00+00:00"
    comparison = compare([Run("<b>base</b>.json", base), Run("b.json", new), Run("c.json", third)])
    rules = parse_fail_on("ttfb_p95_ms>+10%", comparison.units)
    page = render_comparison(comparison, judge(comparison, rules), fail_on="ttfb_p95_ms>+10%")
    parsed = _parse(page)
    for plot in ("plot-ttfb-distribution-overlay", "plot-talk-over-distribution-overlay",
                 "plot-trend-ttfb", "plot-trend-rates", "plot-trend-failures",
                 "plot-trend-harness", "runs-table", "gate-table", "compare-table"):  # fmt: skip
        assert plot in parsed.ids, plot
    assert "&lt;b&gt;base&lt;/b&gt;.json" in page and "<b>base</b>.json" not in page
    assert "<script" not in page and not re.search(r"(src|href)=\"?https?:", page)
    # two runs: no trend section
    assert "plot-trend-ttfb" not in render_comparison(_compare(base, new))


def test_overlay_shares_sum_to_100_per_run() -> None:
    base, new = _pair()
    base["distribution_bucket_ms"] = 1
    base["distributions"] = {"ttfb_ms": [[600 + i, 2] for i in range(40)]}
    new["distribution_bucket_ms"] = 10  # an older summary: 10 ms buckets
    new["distributions"] = {"ttfb_ms": [[800, 50], [810, 30]]}
    page = render_comparison(_compare(base, new))
    svg = re.search(r'<svg id="plot-ttfb-distribution-overlay".*?</svg>', page, re.S)
    assert svg is not None
    for label in ("base base.json", "#1 new0.json"):
        shares = re.findall(rf"<title>{re.escape(label)} at [\d.]+: ([\d.e+-]+) %</title>",
                            svg.group())  # fmt: skip
        assert shares and sum(float(v) for v in shares) == pytest.approx(100, abs=0.5)


def test_baseline_block_goes_into_the_summary_and_the_report() -> None:
    base, new = _pair()
    new["metrics"]["ttfb_ms"]["p50"] = 1012.0
    comparison = compare([Run("base.json", base), Run("this run", new)])
    findings = judge(comparison, parse_fail_on("ttfb_p50_ms>+10%", comparison.units))
    block = json.loads(json.dumps(
        baseline_block(comparison, findings, fail_on="ttfb_p50_ms>+10%", force=False)
    ))  # fmt: skip
    assert block["file"] == "base.json" and block["exit_code"] == 1 and block["comparable"]
    (regression,) = block["regressions"]
    assert regression["key"] == "ttfb_p50_ms" and regression["change"] == pytest.approx(24.6305)
    row = next(r for r in block["rows"] if r["key"] == "ttfb_p50_ms")
    assert (row["base"], row["new"], row["change"]) == (812.0, 1012.0, 200.0)
    assert block["distributions"]["ttfb_ms"] == base["distributions"]["ttfb_ms"]
    new["baseline"] = block
    page = render_report(new)
    parsed = _parse(page)
    assert {"section-baseline", "baseline-table", "baseline-gate-table"} <= set(parsed.ids)
    assert "plot-ttfb-distribution-overlay" in parsed.ids
    assert "section-baseline" not in _parse(render_report(base)).ids


# -------------------------------------------------------------- the CLI (files and exit codes)


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_compare_arguments(parser)
    return int(run_compare(parser.parse_args(list(argv))))


def _write(path: Path, summary: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary))
    return path


def test_cli_exit_codes_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = _pair()
    new["metrics"]["ttfb_ms"]["p50"] = 1012.0
    a, b = _write(tmp_path / "a.json", base), _write(tmp_path / "b.json", new)
    assert _cli(str(a), str(b)) == 0
    html = tmp_path / "out" / "compare.html"
    html.parent.mkdir()
    assert _cli(str(a), str(b), "--fail-on", "ttfb_p50_ms>+10%", "--html", str(html)) == 1
    out = capsys.readouterr().out
    assert "ttfb_p50_ms>+10%" in out and "REGRESSION (exit code 1)" in out
    assert "plot-ttfb-distribution-overlay" in html.read_text()
    new["scenarios"], base["scenarios"] = {"x": {}}, {"y": {}}
    _write(a, base), _write(b, new)
    assert _cli(str(a), str(b)) == 2
    assert _cli(str(a), str(b), "--force") == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["a.json"], "at least one more run"),
        (["a.json", "missing.json"], "does not exist"),
        (["a.json", "a.json", "--fail-on", "nope>1"], "no quantity named 'nope'"),
        (["a.json", "empty/"], "no run summaries in folder"),
        (["a.json", "nothing-*.json"], "no run summaries in files matching"),
        (["a.json", "other.json"], "not a run summary"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "a.json", realistic_summary())
    (tmp_path / "empty").mkdir()
    (tmp_path / "other.json").write_text('{"stats": []}')
    assert _cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and err.startswith("voice-loadtest compare:")


def test_cli_folders_and_globs_order_runs_by_start_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for day, name in ((7, "b"), (5, "c"), (6, "a")):  # names sort differently from the days
        summary = realistic_summary()
        summary["run"]["started_at"] = f"2025-03-0{day}T01:00:00+00:00"
        summary["metrics"]["ttfb_ms"]["p50"] = 100.0 * day
        _write(tmp_path / "nightly" / name / "summary.json", summary)
    (tmp_path / "nightly" / "notes.json").write_text("[1, 2]")  # not a summary: skipped
    assert _cli(str(tmp_path / "nightly")) == 0
    out = capsys.readouterr().out
    order = re.findall(r"nightly/(\w)/summary.json", out)[:3]
    assert order == ["c", "a", "b"]  # oldest first; the oldest is the baseline
    assert re.search(r"ttfb_p50_ms\s+500\.0\s+600\.0\s+\+100\.0 ms", out)
    pattern = str(tmp_path / "nightly" / "*" / "summary.json")
    assert _cli(pattern, "--fail-on", "ttfb_p50_ms>+50ms") == 1


def _run_args(*argv: str) -> argparse.Namespace:
    from loadtest.metrics.compare_cli import add_baseline_arguments

    parser = argparse.ArgumentParser()
    add_baseline_arguments(parser)
    return parser.parse_args(list(argv))


def test_run_baseline_is_checked_before_the_run(tmp_path: Path) -> None:
    from loadtest.metrics.compare_cli import load_baseline

    assert load_baseline(_run_args()) is None
    with pytest.raises(ConfigError, match="add --baseline FILE"):
        load_baseline(_run_args("--fail-on", "ttfb_p50_ms>+10%"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_baseline(_run_args("--baseline", str(tmp_path / "nope.json")))
    base = _write(tmp_path / "base.json", realistic_summary())
    with pytest.raises(ConfigError, match="no quantity named 'ttfb_p50'"):
        load_baseline(_run_args("--baseline", str(base), "--fail-on", "ttfb_p50>+10%"))
    loaded = load_baseline(_run_args("--baseline", str(base), "--fail-on", "ttfb_p50_ms>+10%"))
    assert loaded is not None and [r.key for r in loaded.rules] == ["ttfb_p50_ms"]


@pytest.mark.parametrize(
    ("run_code", "p50", "expected"),
    [(0, 812.0, 0), (0, 1012.0, 1), (1, 812.0, 1), (2, 1012.0, 2), (130, 1012.0, 130)],
)
def test_apply_baseline_stores_the_comparison_and_combines_codes(
    tmp_path: Path, run_code: int, p50: float, expected: int
) -> None:
    from loadtest.metrics.compare_cli import apply_baseline, load_baseline

    base, new = _pair()
    new["metrics"]["ttfb_ms"]["p50"] = p50
    baseline = load_baseline(
        _run_args("--baseline", str(_write(tmp_path / "base.json", base)), "--fail-on",
                  "ttfb_p50_ms>+10%")
    )  # fmt: skip
    assert baseline is not None
    path = _write(tmp_path / "reports" / "summary.json", new)
    assert apply_baseline(baseline, path, run_code) == expected
    stored = json.loads(path.read_text())
    assert stored["baseline"]["file"] == str(tmp_path / "base.json")
    assert stored["metrics"] == new["metrics"]  # the rest of the summary is untouched
