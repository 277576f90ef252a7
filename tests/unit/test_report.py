"""The HTML report: every section and plot present, escaped, offline, balanced markup."""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from loadtest.errors import ConfigError
from loadtest.metrics.report import render_report
from loadtest.metrics.report_cli import add_report_arguments, run_report, write_report
from loadtest.metrics.report_plots import rebin
from loadtest.metrics.svg import nice_ticks

EVIL_TARGET = "wss://agent.example.com/media?x=<script>alert(1)</script>&y=\"'"


def _buckets(rng: random.Random, n: int, mu_ms: float, sigma: float) -> list[list[int]]:
    counts = Counter(int(rng.lognormvariate(0, sigma) * mu_ms) // 10 * 10 for _ in range(n))
    return [[start, count] for start, count in sorted(counts.items())]


def _window(rng: random.Random, t_s: float, users: int) -> dict[str, Any]:
    ttfb = 700 + users * 4 + rng.uniform(-40, 40)
    barge = 250 + rng.uniform(-30, 30)
    barge_count = rng.choice([0, 2, 3])
    return {
        "t_s": t_s,
        "users": users,
        "ttfb_ms": {"count": users, "p50": ttfb, "p95": ttfb * 1.6, "p99": ttfb * 2.1},
        "barge_in_ms": {"count": barge_count}
        | (
            {"p50": barge, "p95": barge * 1.5, "p99": barge * 1.9}
            if barge_count
            else {"p50": None, "p95": None, "p99": None}
        ),
        "connection_success": 1.0 if t_s < 300 else 0.96,
        "turn_success": rng.uniform(0.93, 1.0),
        "barge_in_success": None if not barge_count else rng.choice([1.0, 0.5]),
        "turns": users * 2,
        "calls": max(1, users // 4),
        "frame_lateness_ms": {"p50": rng.uniform(0.2, 0.6), "p99": rng.uniform(2, 6)},
        "worker_cpu_max": min(85.0, 20 + users * 0.9),
    }


def realistic_summary() -> dict[str, Any]:
    """A summary as the master writes it after a 10-minute ramped run, with every key."""
    rng = random.Random(5)
    timeline = [_window(rng, t, min(60, 5 + int(t // 10))) for t in range(5, 605, 5)]
    return {
        "metrics": {
            "ttfb_ms": {"count": 4212, "p50": 812.0, "p90": 1390.0, "p95": 1730.5,
                        "p99": 2410.0, "max": 6120.0, "mean": 905.2},
            "barge_in_ms": {"count": 311, "p50": 262.0, "p90": 380.0, "p95": 433.0,
                            "p99": 610.0, "max": 980.0, "mean": 281.4},
            "greeting_ms": {"count": 520, "p50": 1210.0, "p90": 1650.0, "p95": 1800.0,
                            "p99": 2100.0, "max": 2500.0, "mean": 1250.0},
            "connect_ms": {"count": 523, "p50": 41.0, "p90": 65.0, "p95": 80.0,
                           "p99": 120.0, "max": 300.0, "mean": 45.5},
            "turn_ms": {"count": 4212, "p50": 5400.0, "p90": 7100.0, "p95": 7800.0,
                        "p99": 9900.0, "max": 14000.0, "mean": 5600.0},
            "talk_over_ms": {"count": 311, "p50": 120.0, "p90": 210.0, "p95": 260.0,
                             "p99": 330.0, "max": 400.0, "mean": 130.0},
        },
        "rates": {"connection_success": 0.9734, "turn_success": 0.9612,
                  "barge_in_success": 0.9131},
        "counts": {
            "calls": 520, "connect_attempts": 534, "turns": 4382, "turns_ok": 4212,
            "barge_attempts": 340, "frames_sent": 1_873_220, "frames_received": 1_650_004,
            "reconnects": 7,
            "failures": {"first_byte_timeout": 131, "connect_refused": 14,
                         "barge_no_stop<&>": 29, "closed_mid_turn": 3},
        },
        "harness": {
            "frame_lateness_ms": {"p50": 0.412, "p99": 4.87, "max": 18.2},
            "receive_lag_ms": {"p50": 0.2, "p99": 3.1, "max": 9.9},
            "realtime_factor": 0.9987,
            "worker_cpu_max": 72.5,
        },
        "slo": {
            "verdict": "warn",
            "exit_code": 0,
            "reasons": [],
            "checks": [
                {"name": "ttfb_p95_ms", "threshold": "< 2000 (acceptable < 3000)",
                 "actual": 1730.5, "status": "pass"},
                {"name": "barge_in_p95_ms", "threshold": "< 500 (acceptable < 1000)",
                 "actual": 433.0, "status": "pass"},
                {"name": "connection_success", "threshold": "> 0.98 (acceptable > 0.95)",
                 "actual": 0.9734, "status": "warn"},
                {"name": "turn_success", "threshold": "> 0.95 (acceptable > 0.9)",
                 "actual": 0.9612, "status": "pass"},
            ],
        },
        "settings": {"WS_URL": EVIL_TARGET, "FIRST_BYTE_TIMEOUT_SEC": 5.0,
                     "SCENARIOS": "booking,barge_in", "BARGE_IN": True, "PCM_DIR": None},
        "run": {"started_at": "2025-03-04T10:15:00+00:00", "duration_s": 605.3, "users": 60,
                "workers": 4, "target": EVIL_TARGET, "role": "master"},
        "distributions": {
            "ttfb_ms": _buckets(rng, 4212, 820, 0.35),
            "barge_in_ms": _buckets(rng, 311, 265, 0.3),
            "greeting_ms": _buckets(rng, 520, 1200, 0.2),
            "talk_over_ms": _buckets(rng, 311, 120, 0.4),
        },
        "timeline": timeline,
    }  # fmt: skip


def minimal_summary() -> dict[str, Any]:
    """An unreachable target: no turns, no barge-ins, no timeline or distributions."""
    empty = {"count": 0, "p50": None, "p90": None, "p95": None, "p99": None, "max": None,
             "mean": None}  # fmt: skip
    return {
        "metrics": {m: dict(empty) for m in ("ttfb_ms", "barge_in_ms", "greeting_ms",
                                             "connect_ms", "turn_ms", "talk_over_ms")},
        "rates": {"connection_success": 0.0, "turn_success": None, "barge_in_success": None},
        "counts": {"calls": 3, "connect_attempts": 3, "turns": 0, "turns_ok": 0,
                   "barge_attempts": 0, "frames_sent": 0, "frames_received": 0, "reconnects": 0,
                   "failures": {"connect_refused": 3}},
        "harness": {"frame_lateness_ms": {"p50": None, "p99": None, "max": None},
                    "receive_lag_ms": {"p50": None, "p99": None, "max": None},
                    "realtime_factor": None, "worker_cpu_max": 3.0},
        "slo": {"verdict": "invalid", "exit_code": 2,
                "reasons": ["no turns were measured (agent unreachable, or the run was too "
                            "short); nothing to judge"],
                "checks": [{"name": "ttfb_p95_ms", "threshold": "< 2000 (acceptable < 3000)",
                            "actual": None, "status": "no_data"}]},
        "settings": {},
        "run": {"started_at": "2025-03-04T10:15:00+00:00", "duration_s": 12.0, "users": 2,
                "workers": 1, "target": "ws://127.0.0.1:9/media", "role": "standalone"},
    }  # fmt: skip


class _Balance(HTMLParser):
    """Counts open/close tags (void and ``/>`` tags excluded) and keeps ids and text."""

    VOID = frozenset(
        {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.text: list[str] = []
        self.tags: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.ids += [v for k, v in attrs if k == "id" and v]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.ids += [v for k, v in attrs if k == "id" and v]

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Balance:
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    return parser


ALL_PLOTS = [
    "plot-ttfb-distribution",
    "plot-barge-in-distribution",
    "plot-greeting-distribution",
    "plot-talk-over-distribution",
    "plot-percentiles-over-time",
    "plot-ttfb-percentiles-over-time",
    "plot-barge-in-percentiles-over-time",
    "plot-success-over-time",
    "plot-counts-over-time",
    "plot-frame-lateness-over-time",
    "plot-worker-cpu-over-time",
    "plot-failures",
]
SECTIONS = [
    "section-header", "section-slo", "section-latency", "section-distributions",
    "section-percentiles", "section-success", "section-harness", "section-failures",
    "section-settings",
]  # fmt: skip


def test_realistic_report_has_every_section_and_plot() -> None:
    page = render_report(realistic_summary())
    parsed = _parse(page)
    assert len(parsed.ids) == len(set(parsed.ids)), "duplicate ids"
    for wanted in [*ALL_PLOTS, *SECTIONS, "slo-table", "latency-table", "settings-table"]:
        assert wanted in parsed.ids, wanted
    assert parsed.tags["svg"] == 11  # every id above but the percentile wrapper is one svg
    assert "invalid-reasons" not in parsed.ids
    text = " ".join(parsed.text)
    for value in ("1,730", "433", "97.3 %", "96.1 %", "4,212", "first_byte_timeout", "WARN",
                  "2025-03-04 10:15:00 UTC", "10 min 05 s", "0.9987", "72 %"):  # fmt: skip
        assert value in text, value
    # distribution marker, percentile reference line and its legend entry
    assert text.count("SLO p95 < 2000 ms") == 3
    assert "SLO p95 < 500 ms" in text
    # success over time is drawn on a fixed 0..100 % scale; all three rates are present
    success = re.search(r'<svg id="plot-success-over-time".*?</svg>', page, re.S)
    assert success and all(n in success.group() for n in ("connection", "turn", "barge-in"))


def test_escapes_every_text_value() -> None:
    page = render_report(realistic_summary())
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "barge_no_stop&lt;&amp;&gt;" in page
    assert "&quot;&#x27;" in page  # quotes in the target cannot break out of an attribute


def test_no_external_resources() -> None:
    summary = realistic_summary()
    page = render_report(summary)
    for forbidden in ("<script", "<link", "<img", "<iframe", "@import", "url(", "xlink:href"):
        assert forbidden not in page.lower(), forbidden
    urls = re.findall(r"(?:https?|wss?)://[^\s<\"']*", page)
    assert urls and all(u.startswith("wss://agent.example.com/media") for u in urls), urls
    assert re.search(r"(?:src|href)\s*=", page) is None


def test_minimal_invalid_run_degrades_to_notes() -> None:
    page = render_report(minimal_summary())
    parsed = _parse(page)
    text = " ".join(parsed.text)
    assert "INVALID" in text and "exit 2" in text
    assert "invalid-reasons" in parsed.ids and "no turns were measured" in text
    assert "no barge-in samples" in text and "no TTFB samples" in text
    assert "no timeline in this summary" in text
    assert "no settings in this summary" in text
    assert "plot-failures" in parsed.ids  # the one thing this run did record
    assert parsed.tags["svg"] == 1
    assert "plot-greeting-distribution" not in page and "Greeting distribution" not in text
    assert "no data" in text and "– ms" not in text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.clear(),
        lambda s: s.update(metrics=[], rates="x", counts=None, harness=3, slo={"checks": [5]}),
        lambda s: s.update(
            timeline=[{"t_s": "soon"}, 7, {"t_s": 5}],
            distributions={"ttfb_ms": [[0, "x"], "bad", [10, 3], [20, -1]]},
        ),
        lambda s: s["run"].update(started_at="yesterday", duration_s=True, target=None),
    ],
)
def test_malformed_parts_never_raise(mangle: Any) -> None:
    summary = realistic_summary()
    mangle(summary)
    _parse(render_report(summary))


def test_older_summary_without_distributions_says_so() -> None:
    summary = realistic_summary()
    del summary["distributions"], summary["timeline"]
    text = " ".join(_parse(render_report(summary)).text)
    assert "no TTFB distribution in this summary (older format)" in text
    assert "no timeline in this summary" in text


def test_long_runs_use_minutes_and_drop_point_markers() -> None:
    summary = realistic_summary()
    window = summary["timeline"][10]
    summary["timeline"] = [dict(copy.deepcopy(window), t_s=t) for t in range(5, 3605, 5)]
    page = render_report(summary)
    assert "minutes since start" in page
    lateness = re.search(r'<svg id="plot-frame-lateness-over-time".*?</svg>', page, re.S)
    assert lateness and "<circle" not in lateness.group()  # 720 points: lines only


def test_rebin_keeps_counts_and_caps_bars() -> None:
    buckets = [[start, 1] for start in range(0, 30_000, 10)]
    bars, beyond, max_start = rebin(buckets, max_bars=60)
    assert len(bars) <= 60 and sum(b.count for b in bars) + beyond == 3000
    assert max_start == 29_990
    assert all((b.end - b.start) % 10 == 0 for b in bars)
    # one far outlier is counted as "not drawn" instead of stretching the axis
    bars, beyond, _ = rebin([[100, 500], [110, 400], [25_000, 1]])
    assert beyond == 1 and bars[-1].end <= 120 and {b.end - b.start for b in bars} == {10}
    assert rebin("nonsense") == ([], 0, None)


def test_nice_ticks() -> None:
    assert nice_ticks(0, 100, 4) == [0, 25, 50, 75, 100]
    assert nice_ticks(0, 2410, 4) == [0, 1000, 2000, 3000]
    assert nice_ticks(5, 5) == [5, 5.2, 5.4, 5.6, 5.8, 6]


def test_write_report_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary_path = tmp_path / "summary.json"
    summary_path.write_text(json.dumps(realistic_summary()))
    out = write_report(summary_path, tmp_path / "r.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    args = parser.parse_args([str(summary_path)])
    assert args.handler(args) == 0
    assert (tmp_path / "summary.html").exists()
    assert "summary.html" in capsys.readouterr().out
    assert (
        run_report(parser.parse_args([str(summary_path), "--out", str(tmp_path / "x.html")])) == 0
    )
    assert (tmp_path / "x.html").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"summary file .*missing\.json does not exist"),
        ("{not json", r"is not valid JSON \(line 1, column 2"),
        ("[1, 2]", "holds a JSON list, not a run summary object"),
        (b"\xff\xfe", "cannot read summary file"),
    ],
)
def test_bad_summary_files(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    path = tmp_path / "missing.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        write_report(path, tmp_path / "out.html")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out.html").exists()


def test_unwritable_output_is_a_config_error(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    summary_path.write_text("{}")
    with pytest.raises(ConfigError, match="cannot write report"):
        write_report(summary_path, tmp_path / "no" / "such" / "dir" / "r.html")
    with pytest.raises(ConfigError, match="is the summary file itself"):
        write_report(summary_path, summary_path)


def test_non_finite_numbers_and_plain_values(tmp_path: Path) -> None:
    summary = realistic_summary()
    summary["metrics"]["ttfb_ms"]["p95"] = float("inf")
    summary["timeline"][3]["ttfb_ms"]["p99"] = float("nan")
    summary["settings"] = {"MAX_BYTES": 123_456_789, "RATIO": 0.125, "FLAG": False}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))  # writes Infinity / NaN, which json.loads accepts
    page = write_report(path, tmp_path / "r.html").read_text(encoding="utf-8")
    text = " ".join(_parse(page).text)
    assert re.search(r"\b(nan|inf|infinity)\b", page, re.I) is None
    assert "123456789" in text and "0.125" in text and "False" in text


def test_renders_what_build_summary_writes() -> None:
    """Guards against schema drift: the summary the master really builds draws every plot."""
    from loadtest.metrics.summary import build_summary, timeline_entry
    from loadtest.metrics.voice_stats import VoiceStats

    rng = random.Random(7)
    total, timeline = VoiceStats(), []
    for window_index in range(12):
        window = VoiceStats()
        for stats in (total, window):
            for _ in range(20):
                stats.observe("ttfb_ms", rng.uniform(600, 1500))
                stats.observe("frame_lateness_ms", rng.uniform(0.1, 3))
            for name in ("barge_in_ms", "greeting_ms", "talk_over_ms"):
                stats.observe(name, rng.uniform(100, 600))
            for name, n in (("calls", 2), ("connect_attempts", 2), ("calls_connected", 2),
                            ("turns", 20), ("turns_ok", 19), ("barge_attempts", 1),
                            ("barge_ok", 1)):  # fmt: skip
                stats.count(name, n)
            stats.error("first_byte_timeout")
        timeline.append(timeline_entry(window, t_s=5.0 * (window_index + 1), users=4, cpu=30.0))
    summary = build_summary(
        total, run={"target": "ws://x", "users": 4, "workers": 1}, timeline=timeline
    )
    summary = json.loads(json.dumps(summary))  # exactly what the JSON file holds
    ids = _parse(render_report(summary)).ids
    assert [p for p in ALL_PLOTS if p not in ids] == []


def _bars_of(page: str, plot_id: str) -> list[tuple[float, float, int]]:
    svg = re.search(rf'<svg id="{plot_id}".*?</svg>', page, re.S)
    assert svg, plot_id
    return [
        (float(a), float(b), int(n))
        for a, b, n in re.findall(r"<title>([\d.]+)–([\d.]+): (\d+)</title></rect>", svg.group())
    ]


def test_narrow_spreads_draw_narrow_bars() -> None:
    """A 0–2 ms greeting and a 200–202 ms talk-over: 1 ms bars on an axis ≥ 10 bars wide."""
    summary = realistic_summary()
    summary["distribution_bucket_ms"] = 1
    summary["distributions"]["greeting_ms"] = [[0, 40], [1, 25], [2, 5]]
    summary["distributions"]["talk_over_ms"] = [[200, 7], [201, 9], [202, 3]]
    summary["metrics"]["greeting_ms"].update(p50=0.5, p95=2.5)
    summary["metrics"]["talk_over_ms"].update(p50=201.5, p95=202.5)
    page = render_report(summary)
    greeting = _bars_of(page, "plot-greeting-distribution")
    assert greeting == [(0, 1, 40), (1, 2, 25), (2, 3, 5)]
    talk_over = _bars_of(page, "plot-talk-over-distribution")
    assert talk_over == [(200, 201, 7), (201, 202, 9), (202, 203, 3)]
    # the bars fill a small part of the axis, not all of it
    svg = re.search(r'<svg id="plot-greeting-distribution".*?</svg>', page, re.S)
    assert svg is not None
    widths = [
        float(w)
        for w in re.findall(
            r'<rect class="bar" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', svg.group()
        )
    ]
    assert len(widths) == 3 and sum(widths) < 0.35 * 640


def test_bar_width_follows_the_spread() -> None:
    one_ms = [[start, 1] for start in range(600, 3000)]
    bars, beyond, _ = rebin(one_ms, bucket=1.0)
    assert {b.end - b.start for b in bars} == {50.0} and sum(b.count for b in bars) + beyond == 2400
    bars, _, _ = rebin([[700 + i, 3] for i in range(30)], bucket=1.0)
    assert {b.end - b.start for b in bars} == {1.0} and len(bars) == 30
    # older summaries: 10 ms buckets, never narrower bars than the data has
    bars, _, _ = rebin([[0, 5], [10, 5]], bucket=10.0)
    assert {b.end - b.start for b in bars} == {10.0}


def test_pad_bars_never_goes_below_zero() -> None:
    from loadtest.metrics.report_plots import pad_bars
    from loadtest.metrics.svg import Bar

    padded = pad_bars([Bar(0, 1, 4), Bar(1, 2, 1)])
    assert padded[0].start == 0 and len(padded) == 10 and sum(b.count for b in padded) == 5
    padded = pad_bars([Bar(200, 201, 4)])
    assert padded[0].start == 196 and padded[-1].end == 206
    wide = [Bar(i * 10, i * 10 + 10, 1) for i in range(20)]
    assert pad_bars(wide) == wide


def test_the_audio_played_and_the_notes_are_on_the_page() -> None:
    from loadtest.metrics.summary import build_summary
    from loadtest.metrics.voice_stats import VoiceStats

    audio = {"dir": "audio_cache", "engines": ["espeak-ng"], "voices": ["en-us"], "files": 12,
             "sample_rates": [16000], "digest": "sha256:" + "ab" * 32,
             "others": [{"dir": "/mnt/<other>", "digest": "sha256:" + "cd" * 32}]}  # fmt: skip
    notes = ["WS_IGNORE_CLOSE_EXCEPTIONS is unset: 2 benign closes failed a turn"]
    summary = build_summary(VoiceStats(), run={"target": "ws://x"},
                            extra={"audio": audio, "notes": notes})  # fmt: skip
    page = render_report(json.loads(json.dumps(summary)))
    parsed = _parse(page)
    assert "audio-table" in parsed.ids and "run-notes" in parsed.ids
    text = " ".join(parsed.text)
    for value in ("audio_cache", "espeak-ng", "en-us", "16000", "sha256:" + "ab" * 32, notes[0],
                  "a worker played another cache"):  # fmt: skip
        assert value in text, value
    assert "/mnt/&lt;other&gt;" in page  # escaped like every other value

    bare = _parse(render_report(json.loads(json.dumps(build_summary(VoiceStats())))))
    assert "audio-table" not in bare.ids and "run-notes" not in bare.ids
