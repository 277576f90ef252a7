"""Report files (edge): ``voice-loadtest report SUMMARY.json [--out FILE]``, the reports
folder check before a run, and a summary save that keeps what it can.

The page itself is rendered by :func:`loadtest.metrics.report.render_report` (pure); this
module reads the summary JSON and writes files atomically (temp file in the target folder,
then rename), so a viewer never sees half a report and a failed write never leaves a
truncated one. :func:`check_reports_dir` runs before any caller starts, so a folder that
cannot take the reports stops the run in one line instead of after the load;
:func:`save_summary` is for the end, when the disk may have filled during the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadtest.errors import ConfigError, ReportsError
from loadtest.metrics.report import render_report

__all__ = [
    "MIN_FREE_BYTES",
    "add_report_arguments",
    "check_reports_dir",
    "default_report_path",
    "read_summary",
    "run_report",
    "save_summary",
    "write_report",
    "write_text_atomic",
]

MIN_FREE_BYTES = 16 << 20
"""Room a run's reports need at least: the summary JSON and HTML, Locust's CSV (one history
row a second) and HTML report of an hours-long run stay well within it."""


def default_report_path(summary_path: Path) -> Path:
    """The report beside its summary: ``reports/summary.json`` → ``reports/summary.html``."""
    return summary_path.with_suffix(".html")


def read_summary(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"summary file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read summary file {path}: {exc}") from exc
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"summary file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg})"
        ) from exc
    if not isinstance(summary, dict):
        raise ConfigError(
            f"summary file {path} holds a JSON {type(summary).__name__}, not a run summary object"
        )
    return summary


def write_text_atomic(path: Path, text: str, *, what: str = "report") -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc


def write_report(summary_path: Path, out: Path) -> Path:
    """Render the summary JSON at ``summary_path`` into ``out``; returns ``out``.

    Raises :class:`~loadtest.errors.ConfigError` (one line) when the summary is missing,
    unreadable or not a JSON object, or when ``out`` cannot be written.
    """
    if out.exists() and out.resolve() == summary_path.resolve():
        raise ConfigError(f"report path {out} is the summary file itself; pick another --out")
    write_text_atomic(out, render_report(read_summary(summary_path)))
    return out


def check_reports_dir(path: Path, *, flag: str = "--reports-dir") -> None:
    """Make sure ``path`` can take a run's reports: it exists or can be made, is a folder,
    takes a file, and has :data:`MIN_FREE_BYTES` free. Raises :class:`ReportsError` (one
    line naming ``flag``); writes nothing that stays."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ReportsError(f"{flag} {path} is a file, not a folder") from None
    except OSError as exc:
        raise ReportsError(f"{flag} {path} cannot be created: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise ReportsError(f"{flag} {path} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".voice-loadtest-write-check-")
        try:
            os.write(fd, b"\n")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise ReportsError(f"{flag} {path} is not writable: {exc.strerror or exc}") from None
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise ReportsError(
            f"{flag} {path} has {free / 2**20:.1f} MiB free; the reports need "
            f"{MIN_FREE_BYTES >> 20} MiB: free some space or point {flag} elsewhere"
        )


def save_summary(summary: Mapping[str, Any], path: Path) -> tuple[Path | None, str | None]:
    """Write ``summary`` as JSON to ``path``; if that fails, keep it anyway.

    Returns ``(where, problem)``: ``(path, None)`` when written; otherwise ``problem`` is one
    line saying what failed and where the summary went instead — a temporary file, or, when
    that fails too, standard output (``where`` is then ``None``). Never raises ``OSError``.
    """
    text = json.dumps(summary, indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text, what="summary")
        return path, None
    except (ConfigError, OSError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) else str(exc)
    try:
        fd, spare = tempfile.mkstemp(prefix="voice-loadtest-summary-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return Path(spare), f"{cause}; the summary was saved to {spare} instead"
    except OSError:
        print(text, file=sys.stdout, flush=True)
        return None, f"{cause}; the summary JSON was printed to standard output instead"


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``voice-loadtest report``; sets ``handler=run_report``."""
    parser.add_argument("summary", type=Path, metavar="SUMMARY.json", help="run summary JSON")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="HTML report to write (default: the summary's path with .html)",
    )
    parser.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Write the report and print its path; returns 0 (errors raise ConfigError)."""
    summary_path: Path = args.summary
    out = write_report(summary_path, args.out or default_report_path(summary_path))
    print(f"report: {out}", flush=True)
    return 0
