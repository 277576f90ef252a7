"""The live Voice view's data and page: Locust table rows, CSV, JSON, and the page itself."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from typing import Any

from loadtest.metrics.live import (
    SLO_COLUMNS,
    VOICE_COLUMNS,
    LiveState,
    WorkerHealth,
    live_data,
    slo_rows,
    to_csv,
    voice_rows,
)
from loadtest.metrics.live_page import render_live_body, render_live_page
from loadtest.metrics.slo import DEFAULT_SLO, NO_TURNS
from loadtest.metrics.summary import build_summary, timeline_entry
from loadtest.metrics.voice_stats import VoiceStats
from tests.unit.test_report import EVIL_TARGET, _parse, minimal_summary, realistic_summary

LIVE = LiveState(
    "running", 60, (WorkerHealth("worker-a", 41.5, "running", 30),
                    WorkerHealth("worker-<b>", 95.0, "running", 30)), DEFAULT_SLO,
)  # fmt: skip


def _summary() -> dict[str, Any]:
    summary = realistic_summary()
    summary["scenarios"] = {
        "quick_question": {"turns": 40, "turns_ok": 39, "turn_success": 0.975,
                           "ttfb_ms": {"count": 39, "p50": 601.44, "p90": 640.0, "p95": 650.0,
                                       "p99": 700.0, "max": 702.0, "mean": 610.0}},
    }  # fmt: skip
    for window in summary["timeline"]:
        window["failures"] = {"first_byte_timeout": 1} if window["t_s"] % 50 == 0 else {}
    return summary


def test_voice_rows_cover_every_metric_and_scenario() -> None:
    rows = {row["name"]: row for row in voice_rows(_summary())}
    assert rows["ttfb_ms@all"] == {
        "name": "ttfb_ms@all", "metric": "ttfb_ms", "scenario": "all", "count": 4212,
        "p50": 812, "p90": 1390, "p95": 1730.5, "p99": 2410, "max": 6120,
    }  # fmt: skip
    assert rows["ttfb_ms@quick_question"]["p50"] == 601.4
    assert {"greeting_ms@all", "connect_ms@all", "barge_in_ms@all"} <= set(rows)
    empty = {row["name"]: row for row in voice_rows(minimal_summary())}
    assert empty["ttfb_ms@all"]["count"] == 0 and empty["ttfb_ms@all"]["p50"] == ""
    # every column Locust's table draws is in every row
    keys = {c["key"] for c in VOICE_COLUMNS}
    assert all(keys <= set(row) for row in rows.values())


def test_slo_rows_show_live_statuses_harness_limits_and_the_verdict() -> None:
    rows = {row["name"]: row for row in slo_rows(_summary(), LIVE)}
    assert rows["ttfb_p95_ms"]["status"] == "pass" and rows["ttfb_p95_ms"]["actual"] == 1730.5
    assert rows["connection_success"]["status"] == "warn"
    assert rows["CPU of worker-a"]["status"] == "pass"
    assert rows["CPU of worker-<b>"]["status"] == "invalid"  # 95 % > the 90 % limit
    assert rows["frame lateness p99"]["threshold"] == "< 20 ms"
    assert rows["verdict"]["status"] == "warn"


def test_before_the_first_turn_the_verdict_is_waiting_not_invalid() -> None:
    summary = build_summary(VoiceStats())
    assert summary["slo"]["reasons"] == [NO_TURNS]
    rows = slo_rows(summary, LIVE)
    assert rows[-1]["status"] == "waiting" and rows[-1]["threshold"] == ""
    page = render_live_page(summary, LiveState("spawning", 2, (), DEFAULT_SLO))
    assert 'class="badge no_data">WAITING<' in page and "invalid-reasons" not in page
    # a harness trip is still shown before the first turn
    summary["slo"]["reasons"].append("the load generator fell behind real time")
    assert slo_rows(summary, LIVE)[-1]["status"] == "invalid"
    assert "invalid-reasons" in render_live_body(summary, LIVE)


def test_csv_has_the_columns_titles_and_every_row() -> None:
    rows = voice_rows(_summary())
    parsed = list(csv.reader(io.StringIO(to_csv(rows, VOICE_COLUMNS))))
    assert parsed[0] == ["Metric (ms)", "Scenario", "count", "p50", "p90", "p95", "p99", "max"]
    assert len(parsed) == len(rows) + 1 and parsed[1][:4] == ["ttfb_ms", "all", "4212", "812"]
    slo = list(csv.reader(io.StringIO(to_csv(slo_rows(_summary(), LIVE), SLO_COLUMNS))))
    assert slo[0] == ["Check", "Threshold", "Actual", "Status"]
    assert ["harness: CPU of worker-<b>", "< 90 %", "95", "invalid"] in slo


def test_live_data_is_json_with_the_summary_and_the_workers() -> None:
    data = json.loads(json.dumps(live_data(_summary(), LIVE)))
    assert data["live"]["workers"][1] == {
        "name": "worker-<b>", "state": "running", "users": 30, "cpu_percent": 95.0,
    }  # fmt: skip
    assert data["summary"]["metrics"]["ttfb_ms"]["p50"] == 812.0
    assert data["voice_table"][0]["name"] == "ttfb_ms@all" and data["live"]["verdict"] == "warn"


def test_page_is_self_contained_relative_and_escaped() -> None:
    page = render_live_page(_summary(), LIVE)
    parsed = _parse(page)
    for element in ("verdict", "slo-table", "health-table", "latency-table", "scenario-table",
                    "plot-ttfb-percentiles-over-time", "plot-barge-in-percentiles-over-time",
                    "plot-active-calls-over-time", "plot-failures-over-time",
                    "section-downloads", "live", "live-status"):  # fmt: skip
        assert element in parsed.ids, element
    # relative URLs only: it must work behind a Service, a port-forward or a path prefix
    urls = re.findall(r'(?:href|src)="([^"]*)"', page) + re.findall(r'fetch\("([^"]*)"', page)
    assert sorted(set(urls)) == [
        "voice/data.json", "voice/fragment", "voice/slo.csv", "voice/table.csv",
    ]  # fmt: skip
    assert "http" not in " ".join(urls) and "<link" not in page
    assert page.count("<script>") == 1 and "src=" not in page
    assert EVIL_TARGET not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "worker-&lt;b&gt;" in page and "worker-<b>" not in page
    # the worker over its CPU limit is flagged in the harness table, the other one passes
    assert (
        '<td class="text">CPU of worker-&lt;b&gt;</td><td>95.0 %</td><td>&lt; 90 %</td>'
        '<td><span class="status invalid">over</span></td>'
    ) in page
    assert '<td class="text">CPU of worker-a</td><td>41.5 %</td>' in page


def test_failures_by_kind_and_callers_have_their_own_axes() -> None:
    page = render_live_body(_summary(), LIVE)
    failures = re.search(r'<svg id="plot-failures-over-time".*?</svg>', page, re.S)
    callers = re.search(r'<svg id="plot-active-calls-over-time".*?</svg>', page, re.S)
    assert failures and callers
    assert "first_byte_timeout" in failures.group() and "connect" not in failures.group()
    assert "active callers" in callers.group() and "first_byte_timeout" not in callers.group()
    # the timeline's first window has not closed yet: a note, not a broken plot
    early = copy.deepcopy(_summary())
    early["timeline"] = []
    assert "the first 5 s window has not closed yet" in render_live_body(early, LIVE)


def test_renders_what_the_master_builds() -> None:
    """Schema drift guard: the live page from a summary the harness really builds."""
    total, timeline = VoiceStats(), []
    for index in range(3):
        window = VoiceStats()
        for stats in (total, window):
            stats.observe("ttfb_ms", 600.0 + index, "quick_question")
            stats.count("turns", scenario="quick_question")
            stats.error("connect_refused")
        timeline.append(timeline_entry(window, t_s=5.0 * (index + 1), users=2, cpu=10.0))
    summary = json.loads(json.dumps(build_summary(total, timeline=timeline)))
    ids = _parse(render_live_page(summary, LIVE)).ids
    expected = {"plot-failures-over-time", "scenario-table", "plot-ttfb-percentiles-over-time"}
    assert expected <= set(ids)
