"""The exported ALT folder runs unchanged under Locust, in an environment like an ALT engine.

The "engine" is a fresh virtualenv that sees only Locust (with what it depends on) plus the
distributions the export's requirements.txt names (with theirs) — linked from this
environment, so no network is needed — and *not* the installed voice-loadtest package: the
harness must come from the exported folder. Locust runs from inside the folder exactly as
ALT starts it (``locust -f locustfile.py`` in local mode), with the ``env`` of
alt-config.yaml, against the reference agent on a free port.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from loadtest.alt.config import ExportRequest
from loadtest.alt.export import export_test
from loadtest.alt.limits import AltLimits
from loadtest.procutil import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Every turn after the first barges in: a 15 s run then holds several barge-ins, not one
KNOBS = ("--barge-in-rate", "1", "--greeting", "off", "--seed", "11")


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    port = free_port()
    agent = subprocess.Popen(
        [sys.executable, "-m", "loadtest", "agent", "--host", "127.0.0.1", "--port", str(port),
         "--latency-ms", "600", "--barge-latency-ms", "200", "--log-level", "warning"],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert agent.poll() is None, "the reference agent exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the reference agent did not start"
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}/api/v1/media/stream"
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def _closure(roots: list[str]) -> set[str]:
    """Names of the installed distributions ``roots`` need, recursively (extras honoured)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(root, frozenset[str]()) for root in roots]
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            requires = importlib.metadata.distribution(key).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker and not any(marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return {key for key, _ in seen}


def _engine_python(root: Path, requirements: Path) -> Path:
    """A virtualenv with Locust + requirements.txt only (symlinked site), no voice-loadtest."""
    roots = ["locust"]
    for line in requirements.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            roots.append(Requirement(text).name)
    site = root / "engine-site"
    site.mkdir()
    for name in _closure(roots):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        base = Path(str(dist.locate_file("")))
        for top in {f.parts[0] for f in dist.files or ()}:
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            if not (site / top).exists() and (base / top).exists():
                (site / top).symlink_to(base / top)
    assert not (site / "loadtest").exists()
    venv = root / "engine-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (packages,) = venv.glob("lib/python*/site-packages")
    (packages / "engine.pth").write_text(f"{site}\n")
    return venv / "bin" / "python"


def _run_locust(python: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """``locust -f locustfile.py --headless -u 4 -r 4 -t 15s`` with alt-config.yaml's env."""
    config = yaml.safe_load((folder / "alt-config.yaml").read_text())
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder)}
    env.update({item["name"]: str(item["value"]) for item in config["env"]})
    return subprocess.run(
        [str(python), "-m", "locust", "-f", config["testPlan"], "--headless",
         "-u", "4", "-r", "4", "-t", "15s", "--csv", "results"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _check_results(folder: Path, done: subprocess.CompletedProcess[str]) -> None:
    log = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, log
    assert "Traceback" not in done.stderr, log
    with (folder / "results_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    for name in ("ttfb", "barge_in"):
        assert name in rows, sorted(rows)
        assert int(rows[name]["Request Count"]) > 0 and rows[name]["Failure Count"] == "0"
    assert 550 <= float(rows["ttfb"]["Median Response Time"]) <= 700
    summary = json.loads((folder / "voice-summary.json").read_text())
    assert summary["slo"]["verdict"] == "pass"


def test_exported_folder_runs_unchanged_on_a_clean_engine(
    tmp_path: Path, espeak_cache_dir: Path, agent_url: str
) -> None:
    folder = tmp_path / "alt"
    exported = subprocess.run(
        [sys.executable, "-m", "loadtest.alt", "export", "--out", str(folder),
         "--ws-url", agent_url, "--allow-insecure-url", "--pcm-dir", str(espeak_cache_dir),
         "--users", "4", "--spawn-rate", "4", "--duration", "15s", "--test-id", "voice-ci",
         *KNOBS],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    python = _engine_python(tmp_path, folder / "requirements.txt")
    no_package = subprocess.run([str(python), "-c", "import loadtest"], cwd=tmp_path,
                                capture_output=True, text=True)  # fmt: skip
    assert "No module named 'loadtest'" in no_package.stderr  # only the folder can provide it
    done = _run_locust(python, folder)
    _check_results(folder, done)


def test_zipped_audio_is_reassembled_on_the_engine(
    tmp_path: Path, espeak_cache_dir: Path, agent_url: str
) -> None:
    folder = tmp_path / "alt"
    request = ExportRequest(
        ws_url=agent_url, allow_insecure_url=True, users=4, spawn_rate=4, duration="15s",
        knobs={"BARGE_IN_RATE": "1", "GREETING": "off", "SEED": "11"},
    )  # fmt: skip
    # ~0.9 MB of audio over 0.5 MB per file: two ZIPs; the harness archive (~0.3 MB) fits.
    result = export_test(request, folder, pcm_dir=espeak_cache_dir,
                         limits=AltLimits(max_file_bytes=500_000))  # fmt: skip
    assert len(result.zips) >= 2 and not list(folder.glob("*.pcm"))
    python = _engine_python(tmp_path, folder / "requirements.txt")
    done = _run_locust(python, folder)  # the ZIPs are still packed, as if ALT had not unzipped
    assert "assembled the audio" in done.stderr, done.stderr[-3000:]
    _check_results(folder, done)
