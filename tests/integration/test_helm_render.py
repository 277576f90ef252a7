"""The Helm chart through Helm's own engine (``helm-python-sdk``: render + lint), every rendered
object validated by ``kubernetes-validate`` (bundled schemas, strict) for the default values,
each preset (``values-*.yaml``) and each ``ci/*-values.yaml`` scenario.

The helpers here (:func:`render`, :func:`scenario_values`, :func:`pod_specs`…) are shared by
the other ``test_helm_*`` modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from tests.conftest import REPO_ROOT
from tools.k8s_manifests import load_values, manifest_objects

CHART = REPO_ROOT / "helm" / "voice-loadtest"
SCENARIOS: dict[str, list[Path]] = {
    "default": [],
    **{p.stem: [p] for p in sorted(CHART.glob("values-*.yaml"))},
    **{f"ci/{p.stem}": [p] for p in sorted((CHART / "ci").glob("*-values.yaml"))},
}
CHART_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
KUBE_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
"""Oldest AKS-supported minor we promise, and the newest schema bundled."""
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject"}
"""Custom resources: kubernetes-validate bundles no schema; see test_helm_observability."""

Obj = dict[str, Any]


@dataclass
class Rendered:
    objects: list[Obj]  # hooks (the helm test pod) included
    notes: str
    values: dict[str, Any]

    def get(self, kind: str, name_suffix: str = "") -> Obj:
        found = [o for o in self.objects if o["kind"] == kind]
        found = [o for o in found if o["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"{kind} *{name_suffix}: {[o['metadata']['name'] for o in found]}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)


def scenario_values(name: str) -> dict[str, Any]:
    return load_values(*SCENARIOS[name])


def render(
    values: dict[str, Any] | None = None, *, release: str = "vl", revision: int = 1
) -> Rendered:
    """Render the chart as ``helm template`` would (namespace ``load``)."""
    with helm_python.Chart.load(CHART) as chart:
        out = chart.render(values=values or {}, name=release, namespace="load", revision=revision)
    notes = next((text for name, text in out.items() if name.endswith("NOTES.txt")), "")
    return Rendered(manifest_objects(out, hooks=True), notes, values or {})


def pod_specs(rendered: Rendered) -> Iterator[tuple[str, Obj, Obj]]:
    """(object name, pod template metadata, pod spec) of every pod the release creates."""
    for obj in rendered.objects:
        if obj["kind"] == "Pod":
            yield obj["metadata"]["name"], obj["metadata"], obj["spec"]
        elif obj["kind"] in ("Deployment", "Job"):
            template = obj["spec"]["template"]
            yield obj["metadata"]["name"], template["metadata"], template["spec"]


def container(spec: Obj, name: str) -> Obj:
    return next(c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name)


def env_of(ctr: Obj) -> dict[str, Any]:
    """Plain env values by name (``valueFrom`` entries map to their source dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in ctr.get("env", [])}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> tuple[str, Rendered]:
    return request.param, render(scenario_values(request.param))


def test_scenarios_cover_presets_and_ci_files() -> None:
    assert {"values-dev", "values-staging", "values-prod"} <= set(SCENARIOS)
    assert len([s for s in SCENARIOS if s.startswith("ci/")]) >= 8


def test_lint_is_clean(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    report = helm_python.lint(CHART, rendered.values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert report["errors"] == [] and problems == [], f"{name}: {problems} {report['errors']}"


def test_every_object_validates_strictly(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    assert rendered.objects, name
    for obj in rendered.objects:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except SchemaNotFoundError:
                assert obj["kind"] in CRD_KINDS, f"{name}: no schema for {obj['kind']}"
                break
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']} {where}: {exc}")


def test_pods_follow_the_restricted_standard(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    pods = list(pod_specs(rendered))
    assert len(pods) >= 2, name
    for pod, _, spec in pods:
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001, pod
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, pod
        assert spec["automountServiceAccountToken"] is False, pod
        for ctr in spec["containers"] + spec.get("initContainers", []):
            ctx = ctr["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, (pod, ctr["name"])
            assert ctx["allowPrivilegeEscalation"] is False, (pod, ctr["name"])
            assert ctx["capabilities"] == {"drop": ["ALL"]}, (pod, ctr["name"])
            mounts = {m["mountPath"] for m in ctr.get("volumeMounts", [])}
            assert "/tmp" in mounts, (pod, ctr["name"], "needs a writable /tmp")
            assert ctr["resources"].get("limits"), (pod, ctr["name"])
        for volume in spec.get("volumes", []):  # the restricted standard's volume types
            assert set(volume) - {"name"} <= {"emptyDir", "configMap", "persistentVolumeClaim"}


def test_selectors_name_the_component_never_the_chart(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    for obj in rendered.objects:
        selector = None
        if obj["kind"] in ("Deployment", "PodDisruptionBudget"):
            selector = obj["spec"]["selector"]["matchLabels"]
        elif obj["kind"] == "Service":
            selector = obj["spec"]["selector"]
        if selector is None:
            continue
        where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
        assert selector["app.kubernetes.io/component"] in ("master", "worker", "agent"), where
        assert "helm.sh/chart" not in selector and "app.kubernetes.io/version" not in selector
        if obj["kind"] == "Deployment":
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), where
    service = rendered.get("Service", "-master")
    master = next(
        o
        for o in rendered.objects
        if o["kind"] in ("Deployment", "Job")
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "master"
    )
    assert (
        service["spec"]["selector"].items()
        <= master["spec"]["template"]["metadata"]["labels"].items()
    )


def test_every_object_carries_the_common_labels(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    for obj in rendered.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "vl", (name, obj["metadata"]["name"])
        assert labels["helm.sh/chart"] == f"voice-loadtest-{CHART_VERSION}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_no_configmap_holds_a_secret_or_audio(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    for obj in rendered.objects:
        if obj["kind"] == "ConfigMap":
            assert "binaryData" not in obj, name
            keys = set(obj.get("data") or {})
            assert not keys & {
                "WS_AUTH_TOKEN",
                "AZURE_STORAGE_CONNECTION_STRING",
                "AUDIO_BLOB_SAS",
                "REPORTS_BLOB_SAS",
            }, name
    assert not [o for o in rendered.objects if o["kind"] == "Secret"], "the chart makes no Secret"
