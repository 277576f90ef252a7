"""Run the headless master to completion, then finish its reports (the chart's mode=run).

    python run-master.py --reports /reports [--upload] -- voice-loadtest-entrypoint master ...

1. The command after ``--`` runs as a child; SIGTERM and SIGINT are forwarded to it, so
   deleting the Job (or ``activeDeadlineSeconds``) stops the run cleanly.
2. When it exits, ``summary.html`` is rendered from ``summary.json`` (the self-contained
   report of ``voice-loadtest report``).
3. With ``--upload``, every file directly in ``--reports`` goes to Azure Blob Storage as
   ``<REPORTS_BLOB_CONTAINER>/<REPORTS_BLOB_PREFIX><UTC start time>/<file>`` with its sha256
   as metadata. Credentials, the first that is set wins: ``AZURE_STORAGE_CONNECTION_STRING``;
   ``REPORTS_BLOB_ACCOUNT_URL`` + ``REPORTS_BLOB_SAS``; ``REPORTS_BLOB_ACCOUNT_URL`` alone with
   DefaultAzureCredential (workload identity; needs Storage Blob Data Contributor).

The exit code is always the child's: the SLO verdict (0 pass, 1 fail, 2 invalid run). A
report or upload failure is one line on stderr, never a different result.

Shipped in the Helm chart (templates/configmap.yaml mounts it at /config/run-master.py); it
uses the image's own report renderer and Blob client (:mod:`loadtest.metrics.report_cli`,
:mod:`loadtest.storage`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

DEFAULT_CONTAINER = "voice-loadtest-reports"
_RENAMES = {  # the audio store's variable names -> the names this script reads
    "AUDIO_BLOB_ACCOUNT_URL": "REPORTS_BLOB_ACCOUNT_URL",
    "AUDIO_BLOB_SAS": "REPORTS_BLOB_SAS",
    "AUDIO_BLOB_CONTAINER": "REPORTS_BLOB_CONTAINER",
    "AUDIO_BLOB_PREFIX": "REPORTS_BLOB_PREFIX",
}


def _store_env(env: Mapping[str, str]) -> dict[str, str]:
    """The ``REPORTS_BLOB_*`` variables under the names :mod:`loadtest.storage` reads."""
    mapped = {"AZURE_STORAGE_CONNECTION_STRING": env.get("AZURE_STORAGE_CONNECTION_STRING", "")}
    for store_name, reports_name in _RENAMES.items():
        mapped[store_name] = env.get(reports_name, "")
    return mapped


def _reports_names(message: str) -> str:
    for store_name, reports_name in _RENAMES.items():
        message = message.replace(store_name, reports_name)
    return message


def render_html(reports: Path) -> str:
    """``summary.html`` from ``summary.json``; a one-line outcome. Raises on failure."""
    from loadtest.metrics.report_cli import write_report

    summary = reports / "summary.json"
    if not summary.is_file():
        return f"reports: no {summary}, so no summary.html"
    return f"reports: {write_report(summary, summary.with_suffix('.html'))}"


def upload_reports(reports: Path, env: Mapping[str, str], started_utc: str) -> str:
    """Upload the files in ``reports``; a one-line outcome. Raises on failure."""
    from loadtest.storage.blob import BlobStore
    from loadtest.storage.settings import blob_settings_from_env

    files = (
        sorted(p for p in reports.iterdir() if p.is_file() and not p.name.startswith("."))
        if reports.is_dir()
        else []
    )
    if not files:
        return f"reports: nothing to upload in {reports}"
    prefix = env.get("REPORTS_BLOB_PREFIX", "").strip().strip("/")
    run_prefix = f"{prefix}/{started_utc}/" if prefix else f"{started_utc}/"
    container = env.get("REPORTS_BLOB_CONTAINER", "").strip() or DEFAULT_CONTAINER
    settings = blob_settings_from_env(_store_env(env), container=container, prefix=run_prefix)
    store = BlobStore.from_settings(settings)
    try:
        # An identity may write blobs without the right to create containers; a real problem
        # (credential, network) fails the first upload below, in one line.
        with contextlib.suppress(Exception):
            store.create_container()
        for path in files:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            store.put(path.name, path, sha256=digest)
        return f"reports: uploaded {len(files)} files to {store.location}"
    finally:
        store.close()


def run(command: Sequence[str]) -> int:
    """Run ``command``, forwarding SIGTERM/SIGINT; its exit code (128+N if a signal killed it)."""
    child = subprocess.Popen(list(command))

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    return 128 - code if code < 0 else code


def _step(what: str, action: Callable[[], str]) -> None:
    try:
        print(action(), flush=True)
    except Exception as exc:  # never change the verdict; say what went wrong in one line
        print(f"reports: {what} failed: {_reports_names(str(exc))}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--reports", type=Path, default=Path("/reports"))
    parser.add_argument("--upload", action="store_true", help="upload the reports to Blob")
    parser.add_argument("command", nargs="+", help="the master command (after --)")
    args = parser.parse_args(argv)
    started_utc = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    code = run(args.command)
    print(f"reports: the master exited with {code}", flush=True)
    _step("summary.html", lambda: render_html(args.reports))
    if args.upload:
        _step("upload", lambda: upload_reports(args.reports, os.environ, started_utc))
    return code


if __name__ == "__main__":
    sys.exit(main())
