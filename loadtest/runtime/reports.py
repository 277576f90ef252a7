"""The end of a run: the HTML report beside the summary, and the reports to Blob (edge).

One implementation for every way a run ends:

* the master (or a standalone process) writes ``summary.html`` right after ``summary.json``
  (:mod:`loadtest.runtime.plugin`, with :func:`loadtest.metrics.report_cli.write_report`),
  so ``voice-loadtest run``, docker compose and the Helm chart all find it beside the
  summary;
* ``voice-loadtest reports upload DIR`` (:func:`upload_reports`) puts every file of a reports
  folder in Azure Blob Storage under ``<REPORTS_BLOB_PREFIX><UTC start>/``, each with its
  sha256 as metadata;
* ``voice-loadtest reports run [--upload] -- COMMAND…`` (:func:`run_to_completion`) runs a
  headless master as a child with SIGTERM/SIGINT forwarded (deleting a Kubernetes Job stops
  the run cleanly), then writes the HTML report if the master could not, and uploads; it exits
  with the master's code. The chart's ``mode: run`` Job is this command.

Blob credentials, the first that is set wins: ``AZURE_STORAGE_CONNECTION_STRING``;
``REPORTS_BLOB_ACCOUNT_URL`` + ``REPORTS_BLOB_SAS``; ``REPORTS_BLOB_ACCOUNT_URL`` alone with
DefaultAzureCredential (workload identity; needs Storage Blob Data Contributor). A report or
upload failure is one line on stderr and never changes a run's exit code: the verdict stands.
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

from loadtest.errors import ConfigError
from loadtest.metrics.report_cli import default_report_path, write_report

__all__ = [
    "DEFAULT_CONTAINER",
    "add_reports_arguments",
    "run_to_completion",
    "upload_reports",
    "write_html",
]

DEFAULT_CONTAINER = "voice-loadtest-reports"
_RENAMES = {  # the audio store's variable names → the names the reports upload reads
    "AUDIO_BLOB_ACCOUNT_URL": "REPORTS_BLOB_ACCOUNT_URL",
    "AUDIO_BLOB_SAS": "REPORTS_BLOB_SAS",
    "AUDIO_BLOB_CONTAINER": "REPORTS_BLOB_CONTAINER",
    "AUDIO_BLOB_PREFIX": "REPORTS_BLOB_PREFIX",
}


def write_html(summary: Path) -> str:
    """``summary.html`` beside the summary JSON ``summary``; the one-line outcome.

    Raises :class:`~loadtest.errors.LoadtestError` (one line) when the summary cannot be read
    or the page cannot be written."""
    return f"report: {write_report(summary, default_report_path(summary))}"


def _store_env(env: Mapping[str, str]) -> dict[str, str]:
    """The ``REPORTS_BLOB_*`` variables under the names :mod:`loadtest.storage` reads."""
    mapped = {"AZURE_STORAGE_CONNECTION_STRING": env.get("AZURE_STORAGE_CONNECTION_STRING", "")}
    for store_name, reports_name in _RENAMES.items():
        mapped[store_name] = env.get(reports_name, "")
    return mapped


def _reports_names(message: str) -> str:
    """``message`` naming the variables the user sets for reports, not the audio store's."""
    for store_name, reports_name in _RENAMES.items():
        message = message.replace(store_name, reports_name)
    return message


def upload_reports(reports: Path, env: Mapping[str, str], run_id: str) -> str:
    """Upload the files directly in ``reports`` (hidden ones left out) under
    ``<REPORTS_BLOB_PREFIX><run_id>/``; the one-line outcome. Raises on failure."""
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
    run_prefix = f"{prefix}/{run_id}/" if prefix else f"{run_id}/"
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


def _run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _child(command: Sequence[str]) -> int:
    """Run ``command``, forwarding SIGTERM/SIGINT; its exit code (128+N if signal N killed
    it)."""
    child = subprocess.Popen(list(command))

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def _step(what: str, action: Callable[[], str]) -> bool:
    """Run one reports step; its outcome on stdout, or one line on stderr. Never raises."""
    try:
        print(action(), flush=True)
        return True
    except Exception as exc:  # never change the verdict; say what went wrong in one line
        print(f"reports: {what} failed: {_reports_names(str(exc))}", file=sys.stderr, flush=True)
        return False


def _html_is_current(summary: Path) -> bool:
    html = default_report_path(summary)
    return html.is_file() and html.stat().st_mtime >= summary.stat().st_mtime


def run_to_completion(
    command: Sequence[str], reports: Path, *, upload: bool, env: Mapping[str, str] | None = None
) -> int:
    """Run the master ``command`` to its end, finish its reports; the master's exit code."""
    run_id = _run_id()
    code = _child(command)
    print(f"reports: the master exited with {code}", flush=True)
    summary = reports / "summary.json"
    if summary.is_file() and not _html_is_current(summary):  # the master could not write it
        _step("summary.html", lambda: write_html(summary))
    if upload:
        _step("upload", lambda: upload_reports(reports, os.environ if env is None else env, run_id))
    return code


# ---------------------------------------------------------------------- CLI


def add_reports_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``voice-loadtest reports upload|run``."""
    reports = sub.add_parser("reports", help="finish a run's reports: upload them, or run a "
                             "master to completion and then upload")  # fmt: skip
    actions = reports.add_subparsers(dest="reports_command", metavar="ACTION", required=True)
    upload = actions.add_parser(
        "upload", help="upload a reports folder to Azure Blob Storage (REPORTS_BLOB_*)"
    )
    upload.add_argument("folder", type=Path, metavar="DIR", help="reports folder")
    upload.set_defaults(handler=_upload)
    run = actions.add_parser(
        "run",
        help="run a headless master (the command after --) with signals forwarded, then "
        "write summary.html and, with --upload, upload the reports; exits with its code",
    )
    run.add_argument("--reports", type=Path, default=Path("/reports"), help="reports folder")
    run.add_argument("--upload", action="store_true", help="upload the reports to Blob")
    run.add_argument("command", nargs="+", metavar="COMMAND", help="the master (after --)")
    run.set_defaults(handler=_run)


def _upload(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise ConfigError(f"{args.folder}: no such reports folder")
    # Nothing was judged here: a failed upload is a set-up error (2), never an SLO fail (1).
    return 0 if _step("upload", lambda: upload_reports(args.folder, os.environ, _run_id())) else 2


def _run(args: argparse.Namespace) -> int:
    return run_to_completion(args.command, args.reports, upload=args.upload)
