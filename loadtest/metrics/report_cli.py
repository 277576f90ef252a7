"""``voice-loadtest report SUMMARY.json [--out FILE]``: write the HTML report (edge).

The page itself is rendered by :func:`loadtest.metrics.report.render_report` (pure); this
module only reads the summary JSON and writes the page atomically (temp file in the target
folder, then rename), so a viewer never sees half a report.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from loadtest.errors import ConfigError
from loadtest.metrics.report import render_report

__all__ = [
    "add_report_arguments",
    "default_report_path",
    "read_summary",
    "run_report",
    "write_report",
    "write_text_atomic",
]


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


def write_text_atomic(path: Path, text: str) -> None:
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
        raise ConfigError(f"cannot write report {path}: {exc.strerror or exc}") from exc


def write_report(summary_path: Path, out: Path) -> Path:
    """Render the summary JSON at ``summary_path`` into ``out``; returns ``out``.

    Raises :class:`~loadtest.errors.ConfigError` (one line) when the summary is missing,
    unreadable or not a JSON object, or when ``out`` cannot be written.
    """
    if out.exists() and out.resolve() == summary_path.resolve():
        raise ConfigError(f"report path {out} is the summary file itself; pick another --out")
    write_text_atomic(out, render_report(read_summary(summary_path)))
    return out


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
