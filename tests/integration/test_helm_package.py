"""``make helm-package`` / ``helm-push`` (tools/helm_chart.py) with Helm's engine: the archive
is laid out as ``helm package`` lays it out, lints clean, renders what the chart directory
renders; a built version is never silently replaced; the version has a CHANGELOG entry."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import helm_python
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.integration.test_helm_render import CHART, CHART_VERSION, render
from tools.helm_chart import lint_archive, main
from tools.k8s_manifests import manifest_objects

pytestmark = [pytest.mark.integration]


def test_make_helm_package_builds_an_archive_helm_lint_accepts(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        ["make", "-s", "helm-package", f"CHART_DIST={tmp_path}", f"BIN={bin_dir}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    archive = tmp_path / f"voice-loadtest-{CHART_VERSION}.tgz"
    assert "lint clean" in done.stdout and archive.is_file()
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {
        "voice-loadtest/Chart.yaml",
        "voice-loadtest/values.schema.json",
        "voice-loadtest/templates/ingress.yaml",
        "voice-loadtest/rules/alerts.yml",
    } <= names
    assert all(n.startswith("voice-loadtest/") for n in names)  # fmt: skip
    assert lint_archive(archive) == []
    with helm_python.Chart.load(archive) as packed:
        assert packed.version == CHART_VERSION
        out = packed.render(values={}, name="vl", namespace="load")
    assert manifest_objects(out, hooks=True) == render().objects


def test_a_built_version_is_kept_or_refused_never_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist"
    assert main(["package", "--chart", str(CHART), "--out", str(out)]) == 0
    archive = out / f"voice-loadtest-{CHART_VERSION}.tgz"
    assert main(["package", "--chart", str(CHART), "--out", str(out)]) == 0  # same content
    changed = tmp_path / "voice-loadtest"
    shutil.copytree(CHART, changed)
    values = changed / "values.yaml"
    values.write_text(values.read_text().replace("users: 10", "users: 11"))
    first = archive.read_bytes()
    assert main(["package", "--chart", str(changed), "--out", str(out)]) == 2
    assert "raise `version` in Chart.yaml" in capsys.readouterr().err
    assert archive.read_bytes() == first


@pytest.mark.parametrize(
    ("registry", "archive", "message"),
    [
        ("https://myacr.azurecr.io/helm", "x.tgz", "expected oci://HOST/PATH"),
        ("oci://", "x.tgz", "expected oci://HOST/PATH"),
        ("oci://myacr.azurecr.io/helm", "missing.tgz", "no such archive"),
    ],
)
def test_push_refuses_bad_arguments_in_one_line(
    registry: str, archive: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", "--registry", registry, archive]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_chart_version_has_a_changelog_entry() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    changelog = (CHART / "CHANGELOG.md").read_text()
    assert f"\n## {chart['version']}\n" in changelog, "add a CHANGELOG.md entry for the version"
