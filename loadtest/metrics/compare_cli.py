"""``voice-loadtest compare`` and ``run --baseline`` (edge: reads summaries, writes pages).

``compare BASE NEW [NEW2 …]`` prints the runs side by side; each argument is a summary file,
a folder (every run summary under it) or a glob (``'nightly/*/summary.json'``). Runs from a
folder or glob are ordered by their start time; the first run of all is the baseline and
every other run is compared with it. Exit codes: 0 no regression, 1 a ``--fail-on`` rule
fired, 2 the runs are not comparable (different scenarios or audio; ``--force`` compares
anyway) or the command was used wrongly. The comparison logic is
:mod:`loadtest.metrics.compare` (pure); this module only finds files and writes output.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import Any

from loadtest.errors import ConfigError, LoadtestError
from loadtest.metrics.compare import Run, compare, quantities
from loadtest.metrics.compare_gate import Rule, baseline_block, judge, parse_fail_on, verdict
from loadtest.metrics.compare_report import format_comparison, render_comparison
from loadtest.metrics.report_cli import read_summary, write_text_atomic

__all__ = [
    "Baseline",
    "add_baseline_arguments",
    "add_compare_arguments",
    "apply_baseline",
    "load_baseline",
    "run_compare",
    "summaries",
]

_GLOB_CHARS = frozenset("*?[")


def _is_summary(document: object) -> bool:
    return isinstance(document, dict) and isinstance(document.get("metrics"), dict)


def _started(run: Run) -> tuple[bool, str]:
    return (run.started_at == "", run.started_at)


def _found(paths: list[Path], where: str) -> list[Run]:
    """The run summaries among ``paths`` (other JSON files are skipped), by start time."""
    runs = []
    for path in sorted(paths):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if _is_summary(document):
            runs.append(Run(str(path), document))
    if not runs:
        raise ConfigError(f"no run summaries in {where}")
    return sorted(runs, key=_started)


def summaries(arguments: list[str]) -> list[Run]:
    """Each argument's runs in order: a file as given, a folder's or a glob's summaries ordered
    by start time. Raises :class:`ConfigError` (one line) for a missing or bad file."""
    runs: list[Run] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            runs += _found([p for p in path.rglob("*.json") if p.is_file()], f"folder {path}")
        elif path.exists() or not _GLOB_CHARS & set(argument):
            summary = read_summary(path)
            if not _is_summary(summary):
                raise ConfigError(f"{path} is not a run summary (it has no 'metrics' object)")
            runs.append(Run(str(path), summary))
        else:
            matches = [Path(p) for p in glob.glob(argument, recursive=True)]
            runs += _found([p for p in matches if p.is_file()], f"files matching {argument!r}")
    return runs


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``voice-loadtest compare``; sets ``handler=run_compare``."""
    parser.add_argument(
        "summaries",
        nargs="+",
        metavar="SUMMARY",
        help="BASE then NEW [NEW2 …]: summary files, folders of them or globs; the first run is "
        "the baseline (a folder's or glob's runs are ordered by start time)",
    )
    parser.add_argument(
        "--fail-on",
        metavar="RULES",
        default="",
        help='exit 1 on regression, e.g. "ttfb_p95_ms>+10%%,barge_in_p95_ms>+50ms,'
        'turn_success<-1pt"',
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="compare runs with different scenarios or audio (otherwise exit 2)",
    )
    parser.add_argument(
        "--html", metavar="FILE", type=Path, help="write the comparison report (with trends)"
    )
    parser.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    """Print the comparison (and write ``--html``); returns the exit code."""
    try:
        runs = summaries(list(args.summaries))
        if len(runs) < 2:
            raise ConfigError(
                f"compare needs a baseline and at least one more run; found {len(runs)}"
            )
        comparison = compare(runs)
        rules = parse_fail_on(args.fail_on, comparison.units) if args.fail_on else ()
        findings = judge(comparison, rules)
        code = verdict(comparison, findings, force=args.force)
        print(format_comparison(comparison, findings, exit_code=code), flush=True)
        if args.html is not None:
            page = render_comparison(
                comparison, findings, fail_on=args.fail_on, force=args.force, exit_code=code
            )
            write_text_atomic(args.html, page)
            print(f"comparison report: {args.html}", flush=True)
    except LoadtestError as exc:
        # 1 means "regression" here, so every usage or file problem exits 2.
        print(f"voice-loadtest compare: error: {exc}", file=sys.stderr)
        return 2
    return code


# -------------------------------------------------------------- run --baseline


class Baseline:
    """A ``run --baseline`` request checked before the run starts (so a typo in the file name
    or a rule does not cost a whole run)."""

    def __init__(self, path: Path, fail_on: str, force: bool) -> None:
        self.path, self.fail_on, self.force = path, fail_on, force
        self.summary = read_summary(path)
        if not _is_summary(self.summary):
            raise ConfigError(f"--baseline {path} is not a run summary (no 'metrics' object)")
        units = {row.key: row.unit for row in quantities(self.summary)}
        self.rules: tuple[Rule, ...] = parse_fail_on(fail_on, units) if fail_on else ()


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    """``--baseline``, ``--fail-on`` and ``--force`` for ``voice-loadtest run``."""
    group = parser.add_argument_group("comparison with a baseline run")
    group.add_argument(
        "--baseline",
        metavar="SUMMARY",
        type=Path,
        help="compare this run with an earlier summary.json; the comparison goes into the "
        "summary ('baseline') and the HTML report",
    )
    group.add_argument(
        "--fail-on",
        metavar="RULES",
        default="",
        help='with --baseline: exit 1 on regression, e.g. "ttfb_p95_ms>+10%%"',
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="with --baseline: compare even when scenarios or audio differ (otherwise exit 2)",
    )


def load_baseline(args: argparse.Namespace) -> Baseline | None:
    """The checked ``--baseline`` of ``args`` (``None`` without one)."""
    if args.baseline is None:
        if args.fail_on or args.force:
            raise ConfigError("--fail-on and --force compare with a baseline: add --baseline FILE")
        return None
    return Baseline(args.baseline, args.fail_on, args.force)


def apply_baseline(baseline: Baseline, summary_path: Path, code: int) -> int:
    """Compare the run's summary with the baseline, store the comparison under its
    ``baseline`` key, print it, and return the run's exit code combined with the gate's
    (the worse of the two: 2 invalid or not comparable, 1 fail or regression)."""
    summary: dict[str, Any] = read_summary(summary_path)
    comparison = compare([Run(str(baseline.path), baseline.summary), Run("this run", summary)])
    findings = judge(comparison, baseline.rules)
    gate = verdict(comparison, findings, force=baseline.force)
    summary["baseline"] = baseline_block(
        comparison, findings, fail_on=baseline.fail_on, force=baseline.force
    )
    write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    print("\n" + format_comparison(comparison, findings, exit_code=gate), flush=True)
    return code if code not in (0, 1, 2) else max(code, gate)
