"""What a platform team adopting the chart relies on (Helm's engine): ``global`` values and a
real subchart render, the web UI's ingress and login, scenarios and audio from the cluster,
the prometheus-community ``extra*`` hooks, and the monitoring knobs.

The ServiceMonitor/PodMonitor API version is taken from ``.Capabilities.APIVersions`` when
Helm talks to a cluster; Helm's engine asks the API server for them only on install or
upgrade (not on render), and none can be had here, so the tests pin the override and what a
render without a cluster gives.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from loadtest.audio.scenarios import parse_scenarios
from tests.integration.test_helm_render import (
    CHART,
    KUBE_VERSIONS,
    container,
    env_of,
    pod_specs,
    render,
    scenario_values,
)
from tools.k8s_manifests import manifest_objects


def _containers(values: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(pod, pod spec, container) of every container the release runs."""
    return [
        (name, spec, ctr)
        for name, _, spec in pod_specs(render(values))
        for ctr in spec["containers"] + spec.get("initContainers", [])
    ]


def test_global_image_registry_prefixes_every_image() -> None:
    values = helm_python.parse_set_string(
        "global.imageRegistry=myacr.azurecr.io,agentSimulator.enabled=true"
    )
    found = _containers(values)
    assert len(found) >= 4  # master, worker, agent, helm test
    for pod, _, ctr in found:
        assert ctr["image"] == "myacr.azurecr.io/voice-loadtest:0.1.0", pod
    own = {"image": {"registry": "own.example.io", "repository": "team/vl", "tag": "1.2"}}
    assert {c["image"] for _, _, c in _containers(own)} == {"own.example.io/team/vl:1.2"}
    both = {**own, "global": {"imageRegistry": "myacr.azurecr.io/"}}  # global wins
    assert {c["image"] for _, _, c in _containers(both)} == {"myacr.azurecr.io/team/vl:1.2"}
    unset = _containers({})
    assert {c["image"] for _, _, c in unset} == {"voice-loadtest:0.1.0"}


def _umbrella(tmp_path: Path, values: dict[str, Any]) -> Path:
    """An umbrella chart with this chart in charts/, as `helm dependency build` leaves it."""
    umbrella = tmp_path / "platform"
    shutil.copytree(CHART, umbrella / "charts" / "voice-loadtest")
    (umbrella / "templates").mkdir()
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    (umbrella / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "platform",
                "version": "1.0.0",
                "dependencies": [{"name": "voice-loadtest", "version": version}],
            }
        )
    )
    (umbrella / "values.yaml").write_text(yaml.safe_dump(values))
    return umbrella


def test_subchart_render_takes_the_umbrellas_global_block(tmp_path: Path) -> None:
    ci = scenario_values("ci/global-subchart-values")
    own = {k: v for k, v in ci.items() if k != "global"}
    umbrella = _umbrella(tmp_path, {"global": ci["global"], "voice-loadtest": own})
    with helm_python.Chart.load(umbrella) as chart:
        assert [d["name"] for d in chart.dependencies] == ["voice-loadtest"]
        out = chart.render(name="vl", namespace="load")
    objects = manifest_objects(out, hooks=True)
    # The ci/ file is exactly what the subchart sees: the same objects either way.
    assert objects == render(ci).objects
    for obj in objects:
        kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
    for name, _, spec in pod_specs(render(ci)):
        assert spec["imagePullSecrets"] == [{"name": "acr-pull"}, {"name": "shared-pull"}], name
        for ctr in spec["containers"]:
            assert ctr["image"].startswith("myacr.azurecr.io/load/voice-loadtest:"), name
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == "managed-csi-premium"
    own_class = render({**ci, "reports": {"persistence": {"enabled": True, "storageClass": "x"}}})
    assert own_class.get("PersistentVolumeClaim")["spec"]["storageClassName"] == "x"
    report = helm_python.lint(umbrella, strict=True, with_subcharts=True)
    assert report["errors"] == [], report
    assert not [m for m in report["messages"] if m["severity"] >= 2], report["messages"]


def test_ingress_with_login_reaches_the_web_port_and_notes_print_the_url() -> None:
    rendered = render(scenario_values("ci/ingress-auth-values"))
    ingress = rendered.get("Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "webapprouting.kubernetes.azure.com"
    assert spec["tls"] == [{"secretName": "loadtest-tls", "hosts": ["loadtest.example.com"]}]
    (rule,) = spec["rules"]
    assert rule["host"] == "loadtest.example.com"
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    backend = path["backend"]["service"]
    service = rendered.get("Service", "-master")
    assert backend["name"] == service["metadata"]["name"]
    web = next(p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"])
    assert web["port"] == 8089
    master = container(rendered.get("Deployment", "-master")["spec"]["template"]["spec"], "master")
    assert "--web-login" in master["args"]
    secret = {"name": "locust-login"}
    assert env_of(master)["WEB_AUTH_USERNAME"] == {"secretKeyRef": {**secret, "key": "username"}}
    assert env_of(master)["WEB_AUTH_PASSWORD"] == {"secretKeyRef": {**secret, "key": "password"}}
    check = container(rendered.get("Pod", "-test")["spec"], "check-master")
    assert env_of(check)["WEB_AUTH_PASSWORD"] == env_of(master)["WEB_AUTH_PASSWORD"]
    assert "https://loadtest.example.com/" in rendered.notes and "WARNING" not in rendered.notes
    exposed = render({"master": {"service": {"type": "LoadBalancer"}}})
    assert "is a LoadBalancer and the web UI has no login" in exposed.notes
    assert "Secret locust-login" in rendered.notes
    anonymous = render(scenario_values("ci/audio-configmap-values"))
    assert "WITHOUT a login of its own" in anonymous.notes
    assert (
        "--web-login"
        not in container(
            anonymous.get("Deployment", "-master")["spec"]["template"]["spec"], "master"
        )["args"]
    )
    run = {**scenario_values("ci/ingress-auth-values"), "mode": "run",
           "target": {"wsUrl": "ws://agent:8010/ws"}}  # fmt: skip
    headless = render(run)
    assert "Ingress" not in headless.kinds() and "serves no web UI" in headless.notes


def test_scenarios_configmap_is_mounted_and_named_in_both_roles() -> None:
    rendered = render(scenario_values("ci/cluster-files-values"))
    for suffix in ("-master", "-worker"):
        spec = rendered.get("Deployment", suffix)["spec"]["template"]["spec"]
        ctr = container(spec, suffix[1:])
        assert env_of(ctr)["SCENARIOS_FILE"] == "/scenarios/billing.yaml", suffix
        mount = next(m for m in ctr["volumeMounts"] if m["name"] == "scenarios")
        assert mount == {"name": "scenarios", "mountPath": "/scenarios", "readOnly": True}
        volume = next(v for v in spec["volumes"] if v["name"] == "scenarios")
        assert volume["configMap"] == {
            "name": "call-scenarios",
            "items": [{"key": "billing.yaml", "path": "billing.yaml"}],
        }
    assert "ConfigMap call-scenarios" in rendered.notes


def test_inline_scenarios_become_a_configmap_the_harness_parses() -> None:
    values = scenario_values("ci/audio-configmap-values")
    rendered = render(values)
    made = rendered.get("ConfigMap", "-scenarios")
    parsed = parse_scenarios(made["data"]["scenarios.yaml"], source="scenarios.yaml")
    assert list(parsed) == ["quick_question"] and parsed["quick_question"].weight == 2
    worker = rendered.get("Deployment", "-worker")["spec"]["template"]
    assert env_of(container(worker["spec"], "worker"))["SCENARIOS_FILE"] == (
        "/scenarios/scenarios.yaml"
    )
    volume = next(v for v in worker["spec"]["volumes"] if v["name"] == "scenarios")
    assert volume["configMap"]["name"] == made["metadata"]["name"]
    changed = {**values, "scenarios": {"inline": {"scenarios": [
        {"name": "other", "turns": ["Hello"]}]}}}  # fmt: skip
    before = worker["metadata"]["annotations"]["checksum/scenarios"]
    after = render(changed).get("Deployment", "-worker")["spec"]["template"]["metadata"]
    assert after["annotations"]["checksum/scenarios"] != before  # new scenarios roll the pods


@pytest.mark.parametrize(
    ("name", "volume"),
    [
        (
            "ci/cluster-files-values",
            {"persistentVolumeClaim": {"claimName": "caller-audio", "readOnly": True}},
        ),
        ("ci/audio-configmap-values", {"configMap": {"name": "caller-audio-small"}}),
    ],
)
def test_audio_from_a_volume_is_read_only_and_never_pulled(
    name: str, volume: dict[str, Any]
) -> None:
    rendered = render(scenario_values(name))
    spec = rendered.get("Deployment", "-worker")["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    assert next(v for v in spec["volumes"] if v["name"] == "audio") == {"name": "audio", **volume}
    worker = container(spec, "worker")
    mount = next(m for m in worker["volumeMounts"] if m["name"] == "audio")
    assert mount["mountPath"] == "/audio" and mount["readOnly"] is True
    assert env_of(worker)["PCM_DIR"] == "/audio" and env_of(worker)["AUDIO_PULL"] == "never"
    if "claim" in str(volume):
        assert mount["subPath"] == "caches/v2"


def test_extra_volumes_env_and_args_reach_master_and_workers() -> None:
    rendered = render(scenario_values("ci/cluster-files-values"))
    for suffix in ("-master", "-worker"):
        spec = rendered.get("Deployment", suffix)["spec"]["template"]["spec"]
        ctr = container(spec, suffix[1:])
        assert ctr["args"][-2:] == ["--loglevel", "INFO"], suffix
        assert {"name": "ca-bundle", "configMap": {"name": "corporate-ca"}} in spec["volumes"]
        assert {"name": "ca-bundle", "mountPath": "/etc/ssl/corporate", "readOnly": True} in (
            ctr["volumeMounts"]
        )
        assert len(ctr["envFrom"]) == 2, suffix  # the chart's ConfigMap, then the extra one
    worker = container(rendered.get("Deployment", "-worker")["spec"]["template"]["spec"], "worker")
    assert worker["envFrom"][1] == {"secretRef": {"name": "agent-headers"}}
    assert env_of(worker)["WS_CA_BUNDLE"] == "/etc/ssl/corporate/ca.pem"


def test_monitors_live_where_prometheus_looks_and_scrape_the_release_namespace() -> None:
    rendered = render(scenario_values("ci/monitoring-values"))
    for kind, endpoints in (("ServiceMonitor", "endpoints"), ("PodMonitor", "podMetricsEndpoints")):
        monitor = rendered.get(kind)
        assert monitor["metadata"]["namespace"] == "monitoring", kind
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["load"]}, kind
        assert monitor["spec"][endpoints][0]["relabelings"], kind
    service = rendered.get("ServiceMonitor")["spec"]["endpoints"][0]
    assert (service["interval"], service["scrapeTimeout"]) == ("30s", "20s")
    assert service["metricRelabelings"][0]["action"] == "drop"
    assert rendered.get("PodMonitor")["spec"]["podMetricsEndpoints"][0]["scrapeTimeout"] == "5s"
    rule = rendered.get("PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring"
    # Without a cluster Helm's capabilities hold no monitoring group: prometheus-operator's.
    offline = render({"metrics": {"serviceMonitor": {"enabled": True},
                                  "prometheusRule": {"enabled": True}}})  # fmt: skip
    assert offline.get("ServiceMonitor")["apiVersion"] == "monitoring.coreos.com/v1"
    assert offline.get("ServiceMonitor")["metadata"]["namespace"] == "load"
    assert offline.get("PrometheusRule")["apiVersion"] == "monitoring.coreos.com/v1"
    assert "relabelings" not in offline.get("ServiceMonitor")["spec"]["endpoints"][0]
    equal = {"metrics": {"serviceMonitor": {"enabled": True, "interval": "1m",
                                            "scrapeTimeout": "60000ms"}}}  # fmt: skip
    assert render(equal).get("ServiceMonitor")  # a timeout equal to the interval is allowed
