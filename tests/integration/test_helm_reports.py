"""The chart's mode=run command (`voice-loadtest reports run --upload`) uploads a run's reports
to a real Blob service (Azurite on 127.0.0.1) and keeps the master's exit code."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from tests.integration.conftest import AZURITE_KEY, Azurite

pytestmark = pytest.mark.integration

MASTER = """
import json, pathlib, sys
reports = pathlib.Path(sys.argv[1])
(reports / "summary.json").write_text(json.dumps({"run": {}, "slo": {"verdict": "fail",
    "exit_code": 1, "reasons": ["ttfb p95 over acceptable"], "checks": []}}))
(reports / "locust_stats.csv").write_text("Type,Name,Request Count\\nvoice,ttfb,42\\n")
(reports / "locust.html").write_text("<html><body>locust</body></html>")
(reports / ".hidden").write_text("not a report")
sys.exit(1)
"""


def _run(
    azurite: Azurite, reports: Path, container: str, key: str = AZURITE_KEY
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(key),
        "REPORTS_BLOB_CONTAINER": container,
        "REPORTS_BLOB_PREFIX": "ci/vl-voice-loadtest-master-run-1/",
    }
    command = [
        sys.executable,
        "-m",
        "loadtest",
        "reports",
        "run",
        "--reports",
        str(reports),
        "--upload",
        "--",
        sys.executable,
        "-c",
        MASTER,
        str(reports),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_reports_land_in_blob_and_the_job_keeps_the_verdict(
    azurite: Azurite, tmp_path: Path
) -> None:
    container = f"r{uuid.uuid4().hex[:12]}"
    result = _run(azurite, tmp_path, container)
    assert result.returncode == 1, result.stderr
    assert "reports: uploaded 4 files to" in result.stdout, result.stdout + result.stderr
    client = ContainerClient.from_connection_string(azurite.connection_string(), container)
    try:
        blobs = {b.name: b for b in client.list_blobs(include=["metadata"])}
        folders = {name.rsplit("/", 1)[0] for name in blobs}
        assert len(folders) == 1
        (folder,) = folders
        assert folder.startswith("ci/vl-voice-loadtest-master-run-1/") and folder.endswith("Z")
        names = sorted(name.rsplit("/", 1)[1] for name in blobs)
        assert names == ["locust.html", "locust_stats.csv", "summary.html", "summary.json"]
        for name, blob in blobs.items():
            data = client.download_blob(name).readall()
            assert data == (tmp_path / name.rsplit("/", 1)[1]).read_bytes()
            assert blob.metadata["sha256"] == hashlib.sha256(data).hexdigest()
        assert (
            b"ttfb p95 over acceptable" in client.download_blob(f"{folder}/summary.html").readall()
        )
    finally:
        client.delete_container()
        client.close()


def test_a_rejected_credential_is_one_line_and_the_verdict_stands(
    azurite: Azurite, tmp_path: Path
) -> None:
    wrong = base64.b64encode(b"not the azurite key, but valid base64 bytes!").decode()
    result = _run(azurite, tmp_path, f"r{uuid.uuid4().hex[:12]}", key=wrong)
    assert result.returncode == 1
    failures = [line for line in result.stderr.splitlines() if line.startswith("reports:")]
    assert len(failures) == 1 and "upload failed" in failures[0], result.stderr
    assert wrong not in result.stderr and AZURITE_KEY not in result.stderr
