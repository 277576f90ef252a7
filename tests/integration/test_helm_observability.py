"""The chart's observability objects: the PrometheusRule (checked by the real ``promtool``),
ServiceMonitor, PodMonitor and KEDA ScaledObject (kubernetes-validate bundles no schemas for
custom resources, so their shape is checked here against the fields those CRDs define), the
Grafana dashboard ConfigMaps and the ``helm test`` hook."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.integration.test_helm_render import (
    KUBE_VERSIONS,
    container,
    pod_specs,
    render,
    scenario_values,
)
from tools.alerts import alert_groups
from tools.dashboards import build_dashboards
from tools.dashboards import render as render_dashboard

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": _STR_MAP, "matchExpressions": {"type": "array"}},
}
_DURATION = {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h|d|w|y)$"}
_ACTIONS = ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
            "lowercase", "uppercase", "keepequal", "dropequal"]  # fmt: skip
_RELABELINGS = {  # prometheus-operator's RelabelConfig
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "sourceLabels": {"type": "array", "items": {"type": "string"}},
            "separator": {"type": "string"},
            "targetLabel": {"type": "string"},
            "regex": {"type": "string"},
            "modulus": {"type": "integer"},
            "replacement": {"type": "string"},
            "action": {"enum": _ACTIONS + [a.capitalize() for a in _ACTIONS]},
        },
    },
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["port"],
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
        "relabelings": _RELABELINGS,
        "metricRelabelings": _RELABELINGS,
    },
}
_NAMESPACES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
}


MONITORING = ["monitoring.coreos.com/v1", "azmonitoring.coreos.com/v1"]


def _resource(api: list[str], kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": {"enum": api}, "kind": {"const": kind}, "spec": spec},
    }


CRD_SHAPES = {
    "ServiceMonitor": _resource(
        MONITORING,
        "ServiceMonitor",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": _NAMESPACES,
                "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
            },
        },
    ),
    "PodMonitor": _resource(
        MONITORING,
        "PodMonitor",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": _NAMESPACES,
                "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
            },
        },
    ),
    "PrometheusRule": _resource(
        ["monitoring.coreos.com/v1"],
        "PrometheusRule",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {"groups": {"type": "array", "minItems": 1}},
        },
    ),
    "ScaledObject": _resource(
        ["keda.sh/v1alpha1"],
        "ScaledObject",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {"name": {"type": "string"}},
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer"},
                "cooldownPeriod": {"type": "integer"},
                "advanced": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"const": "prometheus"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "authenticationRef": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            },
                            "metadata": {
                                **_STR_MAP,
                                "required": ["serverAddress", "query", "threshold"],
                            },
                        },
                    },
                },
            },
        },
    ),
}


@pytest.mark.parametrize(
    "name", ["ci/monitoring-values", "ci/keda-values", "ci/azure-managed-prometheus-values"]
)
def test_custom_resources_have_the_crd_shape(name: str) -> None:
    rendered = render(scenario_values(name))
    custom = [o for o in rendered.objects if o["kind"] in CRD_SHAPES]
    assert custom, name
    for obj in custom:
        jsonschema.validate(obj, CRD_SHAPES[obj["kind"]])
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]},
            KUBE_VERSIONS[-1],
            strict=True,
        )


def test_service_monitor_and_pod_monitor_select_what_serves_metrics() -> None:
    rendered = render(scenario_values("ci/monitoring-values"))
    monitor = rendered.get("ServiceMonitor")
    service = rendered.get("Service", "-master")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    pod_monitor = rendered.get("PodMonitor")
    selected = pod_monitor["spec"]["selector"]["matchExpressions"][0]["values"]
    for kind, suffix in (("Deployment", "-worker"), ("Deployment", "-agent")):
        spec = rendered.get(kind, suffix)["spec"]["template"]
        assert spec["metadata"]["labels"]["app.kubernetes.io/component"] in selected
        ports = {p["name"] for c in spec["spec"]["containers"] for p in c["ports"]}
        assert "metrics" in ports, suffix


def test_prometheus_rule_is_the_alert_generator_and_promtool_accepts_it(tmp_path: Path) -> None:
    rendered = render(scenario_values("ci/monitoring-values"))
    groups = rendered.get("PrometheusRule")["spec"]["groups"]
    assert groups == alert_groups(), "run `make generate` (rules/alerts.yml is stale)"
    promtool = shutil.which("promtool")
    if promtool is None:
        subprocess.run(["bash", str(REPO_ROOT / "scripts/deps/prometheus.sh")], check=False)
        promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/deps/prometheus.sh could not install it"
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in result.stdout


def test_keda_scales_workers_on_callers_from_the_master() -> None:
    rendered = render(scenario_values("ci/keda-values"))
    scaled = rendered.get("ScaledObject")
    assert (
        scaled["spec"]["scaleTargetRef"]["name"]
        == rendered.get("Deployment", "-worker")["metadata"]["name"]
    )
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["metadata"]["query"] == (
        'sum(voice_loadtest_users{namespace="load",service="vl-voice-loadtest-master"})'
    )
    assert trigger["metadata"]["threshold"] == "120" and trigger["metricType"] == "AverageValue"
    assert "HorizontalPodAutoscaler" not in rendered.kinds(), "KEDA owns the HPA"
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "x"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "x"},
            "maxReplicas": 2,
            "behavior": behavior,
        },
    }
    kubernetes_validate.validate(hpa, KUBE_VERSIONS[-1], strict=True)
    assert "replicas" not in rendered.get("Deployment", "-worker")["spec"]


def test_dashboards_ship_as_sidecar_configmaps() -> None:
    sources = {name: render_dashboard(model) for name, model in build_dashboards().items()}
    assert sources
    rendered = render(scenario_values("ci/monitoring-values"))
    maps = {
        next(iter(o["data"])): o for o in rendered.objects if "-dashboard-" in o["metadata"]["name"]
    }
    assert sorted(maps) == sorted(sources)
    for name, text in sources.items():
        cm = maps[name]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["namespace"] == "monitoring"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Load tests"}
        assert cm["data"] == {name: text}, "run `make generate`"
        assert json.loads(cm["data"][name])["uid"]
        assert len(text.encode()) < 900_000, "ConfigMaps hold at most 1 MiB"
    assert not [
        o
        for o in render({"dashboards": {"enabled": False}}).objects
        if "-dashboard-" in o["metadata"]["name"]
    ]


def test_pods_carry_scrape_annotations_unless_switched_off() -> None:
    for _, meta, spec in pod_specs(render(scenario_values("ci/monitoring-values"))):
        if "containers" in spec and meta.get("annotations", {}).get("prometheus.io/scrape"):
            port = int(meta["annotations"]["prometheus.io/port"])
            assert port in {p["containerPort"] for c in spec["containers"] for p in c["ports"]}
    for name, meta, _ in pod_specs(render(scenario_values("ci/naming-values"))):
        assert "prometheus.io/scrape" not in meta.get("annotations", {}), name


def test_helm_test_hook_checks_the_master_api_and_metrics() -> None:
    for mode_values, mode in (({}, "interactive"), (scenario_values("ci/run-pvc-values"), "run")):
        rendered = render(mode_values)
        pod = rendered.get("Pod", "-test")
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        ctr = container(pod["spec"], "check-master")
        assert ctr["command"][:2] == ["python", "-c"]
        assert ctr["command"][3:] == ["vl-voice-loadtest-master", mode]
        assert "/metrics" in ctr["command"][2] and "/stats/requests" in ctr["command"][2]


def test_azure_managed_prometheus_gets_its_own_api_group_and_keda_authenticates() -> None:
    rendered = render(scenario_values("ci/azure-managed-prometheus-values"))
    for kind in ("ServiceMonitor", "PodMonitor"):
        assert rendered.get(kind)["apiVersion"] == "azmonitoring.coreos.com/v1"
    trigger = rendered.get("ScaledObject")["spec"]["triggers"][0]
    assert trigger["authenticationRef"] == {"name": "keda-azure-monitor"}
    assert render(scenario_values("ci/keda-values")).get("ServiceMonitor")["apiVersion"] == (
        "monitoring.coreos.com/v1"
    )
