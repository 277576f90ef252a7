"""Builders for Grafana's dashboard JSON model (core: pure dicts, no Grafana needed).

Just enough of the model for provisioned, read-only dashboards: rows, time series, stat,
heatmap and state-timeline panels on Prometheus, a ``${datasource}`` variable and query
variables. Declare the panels with :func:`row` and :func:`panel`; :func:`dashboard` numbers
them and lays them out on Grafana's 24-column grid (each row starts a new line; panels flow
left to right and wrap).

Reference: https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DATASOURCE",
    "GRID_WIDTH",
    "Panel",
    "Query",
    "Row",
    "dashboard",
    "datasource_variable",
    "query_variable",
    "row",
    "series_style",
]

GRID_WIDTH = 24
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
"""Every panel and query uses the dashboard's ``datasource`` variable."""

_SCHEMA_VERSION = 39


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target; ``legend`` is Grafana's legend format (``{{label}}``)."""

    expr: str
    legend: str = ""
    instant: bool = False
    heatmap: bool = False


@dataclass(frozen=True, slots=True)
class Panel:
    """One visualisation. ``kind`` is Grafana's panel type (``timeseries``, ``stat``, …);
    ``width``/``height`` are grid units; ``field_config`` (field defaults), ``custom``
    (their ``custom`` part), ``options`` and ``overrides`` are merged into the kind's defaults."""

    kind: str
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    width: int = 12
    height: int = 8
    field_config: Mapping[str, Any] = field(default_factory=dict)
    custom: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    overrides: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def row(title: str, *panels: Panel) -> Row:
    return Row(title, panels)


def series_style(name: str, color: str, *, dashed: bool = False) -> dict[str, Any]:
    """An override for the series called ``name``: fixed colour, optionally a dashed line
    without fill (used for SLO thresholds drawn from ``voice_loadtest_slo_threshold_*``)."""
    properties: list[dict[str, Any]] = [
        {"id": "color", "value": {"mode": "fixed", "fixedColor": color}}
    ]
    if dashed:
        properties += [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
        ]
    return {"matcher": {"id": "byName", "options": name}, "properties": properties}


def datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def query_variable(name: str, label: str, definition: str) -> dict[str, Any]:
    """A multi-value variable from a ``label_values(...)`` query, "All" meaning ``.*``."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": dict(DATASOURCE),
        "definition": definition,
        "query": {"query": definition, "refId": f"{name}-values"},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def _defaults(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fieldConfig.defaults.custom, options) Grafana would fill in for ``kind``."""
    legend = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}
    tooltip = {"mode": "multi", "sort": "desc"}
    if kind == "timeseries":
        custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "spanNulls": False,
                  "showPoints": "never", "axisSoftMin": 0}  # fmt: skip
        return custom, {"legend": legend, "tooltip": tooltip}
    if kind == "stat":
        stat: dict[str, Any] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
        }
        return {}, stat
    if kind == "heatmap":
        heatmap: dict[str, Any] = {
            "calculate": False,
            "yAxis": {"unit": "s"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "tooltip": {"mode": "single", "yHistogram": True},
            "legend": {"show": True},
        }
        return {}, heatmap
    if kind == "state-timeline":
        return {"fillOpacity": 70}, {"legend": legend, "tooltip": tooltip, "showValue": "never"}
    raise ValueError(f"unsupported panel kind {kind!r}")


def _targets(queries: Sequence[Query]) -> list[dict[str, Any]]:
    targets = []
    for index, query in enumerate(queries):
        target: dict[str, Any] = {
            "datasource": dict(DATASOURCE),
            "refId": chr(ord("A") + index),
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
        }
        if query.heatmap:
            target["format"] = "heatmap"
        targets.append(target)
    return targets


def _panel_json(panel: Panel, panel_id: int, pos: dict[str, int]) -> dict[str, Any]:
    custom, options = _defaults(panel.kind)
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "custom": {**custom, **panel.custom},
        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
        **panel.field_config,
    }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(DATASOURCE),
        "gridPos": pos,
        "fieldConfig": {"defaults": defaults, "overrides": [dict(o) for o in panel.overrides]},
        "options": {**options, **panel.options},
        "targets": _targets(panel.queries),
    }


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    rows: Sequence[Row],
    variables: Sequence[Mapping[str, Any]],
    links: Sequence[Mapping[str, Any]] = (),
    refresh: str = "5s",
    time_from: str = "now-30m",
) -> dict[str, Any]:
    """The whole dashboard model: panels numbered from 1, rows laid out top to bottom."""
    panels: list[dict[str, Any]] = []
    y = 0
    for section in rows:
        panels.append({
            "id": len(panels) + 1, "type": "row", "title": section.title, "collapsed": False,
            "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": [],
        })  # fmt: skip
        y += 1
        x, line_height = 0, 0
        for item in section.panels:
            if item.width > GRID_WIDTH:
                raise ValueError(f"panel {item.title!r} is wider than the grid")
            if x + item.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            pos = {"h": item.height, "w": item.width, "x": x, "y": y}
            panels.append(_panel_json(item, len(panels) + 1, pos))
            x += item.width
            line_height = max(line_height, item.height)
        y += line_height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["voice-loadtest"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "",
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "schemaVersion": _SCHEMA_VERSION,
        "version": 1,
        "links": [dict(link) for link in links],
        "annotations": {"list": []},
        "templating": {"list": [dict(v) for v in variables]},
        "panels": panels,
    }
