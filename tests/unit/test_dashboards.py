"""The Grafana dashboards: committed files equal the generator, every panel has a query on
metrics the exporter really publishes, and the layout is a valid grid."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtest.metrics.slo import DEFAULT_SLO
from tests.unit.exported_metrics import METRIC_NAME, exported
from tools.dashboards import (
    AZURE_MONITOR_EXPRS,
    DASHBOARDS,
    build_dashboards,
    render,
)
from tools.grafana import GRID_WIDTH

COMMITTED = Path(__file__).resolve().parents[2] / "helm" / "voice-loadtest" / "dashboards"
MODELS = build_dashboards()


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def _exprs() -> list[str]:
    return [t["expr"] for m in MODELS.values() for p in _panels(m) for t in p["targets"]]


@pytest.mark.parametrize("name", DASHBOARDS)
def test_committed_file_is_what_the_generator_produces(name: str) -> None:
    path = COMMITTED / name
    assert path.read_text() == render(MODELS[name]), f"{path} drifted: run `make generate`"


def test_no_stale_dashboard_files() -> None:
    assert {p.name for p in COMMITTED.glob("*.json")} == set(DASHBOARDS)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_panel_has_a_query_on_the_datasource_variable(name: str) -> None:
    model = MODELS[name]
    assert model["uid"] == name.removesuffix(".json")
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(model):
        assert panel["targets"], f"{panel['title']} has no query"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["description"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"


@pytest.mark.parametrize("name", DASHBOARDS)
def test_layout_fits_the_grid_without_overlaps(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in MODELS[name]["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= GRID_WIDTH, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("name", DASHBOARDS)
def test_template_variables(name: str) -> None:
    variables = {v["name"]: v for v in MODELS[name]["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for var in ("target", "scenario"):
        assert variables[var]["definition"].startswith("label_values(")
        assert variables[var]["definition"].endswith(f", {var})")
        assert variables[var]["allValue"] == ".*" and variables[var]["includeAll"]


def test_queries_name_only_exported_metrics_and_labels() -> None:
    names = exported()
    labels = set().union(*names.values()) | {"le"}
    for expr in _exprs():
        for metric in METRIC_NAME.findall(expr):
            assert metric in names, f"{metric} is not exported (in {expr})"
        for label in re.findall(r"(\w+)\s*(?:=~|!=|=)\s*\"", expr):
            assert label in labels, f"label {label} does not exist (in {expr})"


def test_filters_use_the_template_variables() -> None:
    for expr in _exprs():
        if "scenario" in expr and "_bucket" in expr and "slo_threshold" not in expr:
            assert 'scenario=~"$scenario"' in expr, expr
        if "voice_loadtest_ttfb" in expr or "voice_loadtest_calls" in expr:
            assert 'target=~"$target"' in expr, expr


def test_slo_panels_draw_thresholds_from_the_exported_gauges() -> None:
    main_panels = {p["title"]: p for p in _panels(MODELS["voice-loadtest.json"])}
    checks = {c.key for c in DEFAULT_SLO.checks}
    drawn = set()
    for panel in main_panels.values():
        legends = {t["legendFormat"]: t["expr"] for t in panel["targets"]}
        if "SLO target" in legends:
            assert "SLO acceptable" in legends
            (check,) = re.findall(r'check="(\w+)"', legends["SLO target"])
            drawn.add(check)
    assert drawn == checks


def test_latency_panels_show_p50_p95_p99() -> None:
    titles = {p["title"]: p for p in _panels(MODELS["voice-loadtest.json"])}
    for title in ("TTFB p50 / p95 / p99 vs SLO", "Barge-in p50 / p95 / p99 vs SLO"):
        legends = [t["legendFormat"] for t in titles[title]["targets"]]
        assert legends[:3] == ["p50", "p95", "p99"]
    ttfb = titles["TTFB p50 / p95 / p99 vs SLO"]["targets"][1]["expr"]
    assert ttfb == (
        "histogram_quantile(0.95, sum by (le) (rate(voice_loadtest_ttfb_seconds_bucket"
        '{target=~"$target",scenario=~"$scenario"}[$__rate_interval])))'
    )


def test_rows_cover_the_issue() -> None:
    rows = [p["title"] for p in MODELS["voice-loadtest.json"]["panels"] if p["type"] == "row"]
    assert rows == [
        "Run overview",
        "Answer latency (TTFB)",
        "Barge-in",
        "Success ratios",
        "Errors",
        "Harness health",
        "Agent server (Azure Monitor)",
    ]


def test_azure_monitor_queries_are_the_two_documented_exemptions() -> None:
    azure = [e for e in _exprs() if "azure_monitor" in e]
    assert sorted(azure) == sorted(AZURE_MONITOR_EXPRS)


def test_dashboards_import_without_io_libraries() -> None:
    code = (
        "import sys, tools.dashboards, tools.alerts; "
        "bad = [m for m in ('gevent', 'websocket', 'locust') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_render_is_stable_json() -> None:
    text = render(MODELS["voice-loadtest.json"])
    assert text.endswith("}\n") and json.loads(text) == MODELS["voice-loadtest.json"]
