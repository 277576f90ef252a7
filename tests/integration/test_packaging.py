"""What ships: the wheel (which the image installs) holds the runtime package and nothing of
the build tooling beside it — generators in tools/, the benchmark in bench/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

BUILD_TOOLING = (
    "tools/",
    "bench/",
    "loadtest/bench/",
    "loadtest/agent_sim/bench.py",
    "loadtest/k8s_manifests.py",
    "loadtest/docs_tables.py",
    "loadtest/metrics/dashboards.py",
    "loadtest/metrics/grafana.py",
    "loadtest/metrics/promql.py",
    "loadtest/metrics/alerts.py",
)
"""Wheel paths that would mean build tooling shipped (where it lives, and where it once was)."""


def _wheel_names(tmp_path: Path) -> list[str]:
    """File names inside a wheel built from a copy of the repository's sources (the build
    writes build/ and *.egg-info next to its input; the real tree stays untouched)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO_ROOT / name, src / name)
    for folder in ("loadtest", "tools", "bench", "tests"):
        shutil.copytree(REPO_ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    out = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out),
         str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = out.glob("voice_loadtest-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_holds_the_runtime_package_and_no_build_tooling(tmp_path: Path) -> None:
    names = _wheel_names(tmp_path)
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"loadtest", "voice_loadtest-0.1.0.dist-info"}, tops
    shipped = [n for n in names if n.startswith(BUILD_TOOLING)]
    assert not shipped, f"build tooling in the wheel: {shipped}"
    # and the runtime is really in it: the CLI, the locustfile, the packaged data
    assert {"loadtest/cli.py", "loadtest/locustfile.py", "loadtest/py.typed",
            "loadtest/alt/alt-config.schema.json"} <= set(names)  # fmt: skip
