"""PromQL builders shared by dashboards and alerts (golden strings)."""

from __future__ import annotations

from tools import promql as q


def test_selector_and_join() -> None:
    assert q.selector("m") == "m"
    assert q.selector("m", "", 'a="1"', 'b=~"x"') == 'm{a="1",b=~"x"}'
    assert q.join("", "a", "", "b") == "a,b"


def test_quantile_over_a_window_and_over_the_run() -> None:
    assert q.quantile(0.95, "h", 'target="t"', window="5m", by=("target",)) == (
        'histogram_quantile(0.95, sum by (target, le) (rate(h_bucket{target="t"}[5m])))'
    )
    assert q.quantile(0.5, "h", window=None) == "histogram_quantile(0.5, sum by (le) (h_bucket))"


def test_ratio() -> None:
    assert q.ratio("c", window="1m") == (
        'sum(increase(c{outcome="ok"}[1m])) / sum(increase(c[1m]))'
    )
    assert q.ratio("c", 'target="t"', window=None, by=("target",)) == (
        'sum by (target) (c{target="t",outcome="ok"}) / sum by (target) (c{target="t"})'
    )


def test_threshold_takes_the_loosest_of_several_masters() -> None:
    assert q.threshold("ttfb_p95_ms", "target") == (
        'max(voice_loadtest_slo_threshold_seconds{check="ttfb_p95_ms",level="target"})'
    )
    assert q.threshold("turn_success", "acceptable") == (
        'min(voice_loadtest_slo_threshold_ratio{check="turn_success",level="acceptable"})'
    )


def test_slo_status_is_zero_one_or_two() -> None:
    latency = q.slo_status_latency("barge_in_p95_ms")
    assert latency.count(">= bool on()") == 2
    assert "voice_loadtest_barge_in_seconds_bucket" in latency
    ratio = q.slo_status_ratio("connection_success")
    assert ratio.count("<= bool on()") == 2 and "* (" in ratio and "< bool 1)" in ratio
    # nothing measured yet: no data rather than a misleading PASS
    assert latency.endswith("and on() (sum(voice_loadtest_barge_in_seconds_count) > 0)")
    assert ratio.endswith("and on() (sum(voice_loadtest_connects_total) > 0)")
