"""The alert rules: committed file equals the generator, thresholds come from the exported
gauges, harness limits from the SLO config, and every rule names real metrics."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import yaml

from loadtest.metrics.slo import DEFAULT_SLO
from tests.unit.exported_metrics import METRIC_NAME, exported
from tests.unit.test_layout import _anchor
from tools.alerts import RUNBOOK, alert_groups, alert_rules, render_rules

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "helm" / "voice-loadtest" / "rules" / "alerts.yml"
RULES = [rule for group in alert_rules().values() for rule in group]


def test_committed_rules_are_what_the_generator_produces() -> None:
    assert COMMITTED.read_text() == render_rules(), f"{COMMITTED} drifted: run `make generate`"


def test_rules_file_round_trips_to_the_groups_the_chart_embeds() -> None:
    assert yaml.safe_load(render_rules()) == {"groups": alert_groups()}
    assert [g["name"] for g in alert_groups()] == ["voice-loadtest-slo", "voice-loadtest-harness"]


def test_each_slo_check_has_a_warning_and_a_critical_alert() -> None:
    by_check: dict[str, list[str]] = {}
    for rule in RULES:
        by_check.setdefault(rule.check, []).append(rule.severity)
    for check in DEFAULT_SLO.checks:
        assert sorted(by_check[check.key]) == ["critical", "warning"], check.key
    # A saturated harness invalidates the run's figures; nothing to page anyone about.
    assert by_check["harness"] == ["warning", "warning", "warning"]


def test_severities_are_the_standard_ones_and_every_alert_has_a_runbook() -> None:
    headings = re.findall(r"^#+ (.+)$", (REPO / RUNBOOK).read_text(), re.M)
    anchors = {_anchor(heading) for heading in headings}
    for rule in alert_groups()[0]["rules"] + alert_groups()[1]["rules"]:
        assert rule["labels"]["severity"] in ("warning", "critical")
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == RUNBOOK and anchor in anchors, rule["alert"]


def test_slo_thresholds_come_from_the_exported_gauges() -> None:
    for rule in RULES:
        if rule.check == "harness":
            continue
        level = "target" if rule.severity == "warning" else "acceptable"
        family = "ratio" if rule.check.endswith("_success") else "seconds"
        gauge = f'voice_loadtest_slo_threshold_{family}{{check="{rule.check}",level="{level}"}}'
        assert gauge in rule.threshold
        assert "on() group_left()" in rule.expr
        assert rule.for_ in ("1m", "2m")


def test_comparisons_follow_the_gate() -> None:
    ops = {rule.name: rule.op for rule in RULES}
    assert ops["VoiceLoadtestTtfbP95OverTarget"] == ">="  # gate: pass only if actual < target
    assert ops["VoiceLoadtestTurnSuccessBelowTarget"] == "<="  # pass only if actual > target
    turn = next(r for r in RULES if r.name == "VoiceLoadtestTurnSuccessBelowTarget")
    assert turn.expr.endswith(") < 1")  # …or a perfect 1.0


def test_harness_limits_follow_the_slo_config() -> None:
    rules = {r.name: r for r in alert_rules()["voice-loadtest-harness"]}
    assert rules["VoiceLoadtestHarnessFrameLateness"].threshold == "0.02"
    assert rules["VoiceLoadtestHarnessWorkerCpu"].threshold == "0.9"  # a ratio of one core
    assert rules["VoiceLoadtestHarnessReceiveLag"].threshold == "0.02"
    custom = replace(
        DEFAULT_SLO,
        max_lateness_p99_ms=35.0,
        max_receive_lag_p99_ms=12.0,
        max_worker_cpu_percent=75.0,
    )
    rules = {r.name: r for r in alert_rules(custom)["voice-loadtest-harness"]}
    assert rules["VoiceLoadtestHarnessFrameLateness"].expr.endswith("> 0.035")
    assert rules["VoiceLoadtestHarnessReceiveLag"].expr.endswith("> 0.012")
    assert rules["VoiceLoadtestHarnessWorkerCpu"].expr.endswith("> 0.75")
    for rule in rules.values():
        assert "makes latencies untrustworthy" in rule.description


def test_latency_alerts_point_at_the_harness() -> None:
    for rule in RULES:
        if rule.check.endswith("_ms"):
            assert "saturated harness makes latencies untrustworthy" in rule.description


def test_rules_name_only_exported_metrics() -> None:
    names = exported()
    for rule in RULES:
        for metric in METRIC_NAME.findall(rule.expr):
            assert metric in names, f"{rule.name}: {metric} is not exported"


def test_alert_names_are_unique() -> None:
    assert len({r.name for r in RULES}) == len(RULES) == 11
