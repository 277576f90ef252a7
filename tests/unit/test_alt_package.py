"""The harness archive, the requirements and the exported locustfile."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from loadtest.alt.package import (
    ENGINE_PROVIDED,
    ENTRY_MODULES,
    build_archive,
    locustfile_text,
    module_sources,
    requirement_lines,
    runtime_distributions,
    third_party_imports,
)


def test_imports_are_followed_through_the_package_including_lazy_ones() -> None:
    sources = {
        "loadtest": "",
        "loadtest.a": "import os\nimport numpy as np\nfrom loadtest.b import thing\n",
        "loadtest.b": "def f():\n    from websocket import create_connection\n",
        "loadtest.unused": "import torch\n",
    }
    found = third_party_imports(sources, ["loadtest.a"])
    assert found == {"numpy", "websocket", "websocket.create_connection"}


def test_requirement_lines_use_declared_specifiers_and_skip_engine_packages() -> None:
    lines = requirement_lines(
        {"numpy": "2.4.6", "locust": "2.47.0", "gevent": "26.9.0", "certifi": "2026.1.1"},
        declared={"numpy": "numpy>=1.26"},
    )
    assert [line.split()[0] for line in lines] == ["certifi", "numpy>=1.26"]
    assert lines[1].endswith("# exported with numpy 2.4.6")


def test_runtime_requirements_cover_the_harness_and_leave_out_tts_and_locust() -> None:
    dists = runtime_distributions(third_party_imports(module_sources(), ENTRY_MODULES))
    names = {line.split()[0].split(">")[0].lower() for line in requirement_lines(dists)}
    assert {"websocket-client", "numpy", "webrtcvad-wheels", "pyyaml", "soxr"} <= names
    assert not names & ENGINE_PROVIDED
    assert "azure-cognitiveservices-speech" not in names and "espeakng-loader" not in names


def test_archive_is_reproducible_and_imports_with_zipimport(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pyz", tmp_path / "b.pyz"
    build_archive(first)
    build_archive(second)
    assert first.read_bytes() == second.read_bytes()
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(first)!r})\n"
        "import loadtest.alt.bootstrap, loadtest.settings, loadtest\n"
        f"assert loadtest.__file__.startswith({str(first)!r}), loadtest.__file__\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_locustfile_checks_python_and_imports_the_archive_first() -> None:
    text = locustfile_text()
    compile(text, "locustfile.py", "exec")
    assert 'sys.path.insert(0, str(_HERE / "voice_loadtest.pyz"))' in text
    assert text.index("sys.version_info < (3, 11)") < text.index("from locust import events")
    assert text.index("register(events)") < text.index("prepare(_HERE, events)")


def test_archive_carries_the_runtime_package_and_no_build_tooling(tmp_path: Path) -> None:
    build_archive(tmp_path / "a.pyz")
    with zipfile.ZipFile(tmp_path / "a.pyz") as archive:
        names = archive.namelist()
    assert {n.split("/", 1)[0] for n in names} == {"loadtest"}
    assert "loadtest/runtime/locust_user.py" in names
    tooling = ("loadtest/bench/", "loadtest/k8s_manifests.py", "loadtest/metrics/dashboards.py")
    assert not [n for n in names if n.startswith(tooling)]
