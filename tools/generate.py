"""Every committed file that derives from code, regenerated in one pass (edge: files).

``make generate`` (``python -m tools.generate``) writes them. ``make check-generated``
(``python -m tools.generate --check``, part of ``make test``) regenerates them without touching
the tree, compares, and exits 1 naming each file that differs, is missing, or that nothing
generates any more — so a hand edit of an output, or a generator change without its output,
fails CI.

In order (a later step reads what an earlier one made):

1. the Grafana dashboards → ``helm/voice-loadtest/dashboards/*.json`` (:mod:`tools.dashboards`);
2. the alert rules → ``helm/voice-loadtest/rules/alerts.yml`` (:mod:`tools.alerts`);
3. the caller settings in ``helm/voice-loadtest/values.schema.json`` (``settings``);
4. the reference tables of the docs (:mod:`tools.docs_tables`) and the chart README's values
   table (:mod:`tools.helm_docs`);
5. ``k8s/``: the chart, with 1–3, rendered by Helm's engine (:mod:`tools.k8s_manifests`).

Each output exists once outside ``k8s/``: the chart ships the dashboards and rules (``.Files``
cannot read outside the chart), docker compose mounts the same folders.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tools.alerts import render_rules
from tools.dashboards import build_dashboards, render
from tools.docs_tables import TABLES, update_blocks
from tools.helm_docs import render_table, replace_block, value_rows
from tools.k8s_manifests import CHART, render_tree, settings_schema

__all__ = ["OWNED", "generate", "main", "stale"]

DASHBOARDS = CHART / "dashboards"
RULES = CHART / "rules"
SCHEMA = CHART / "values.schema.json"
CHART_README = CHART / "README.md"
OWNED = (DASHBOARDS, RULES, Path("k8s/base"), Path("k8s/overlays"))
"""Folders whose every file is generated: a file there that nothing generates is stale."""
_DIFF_LINES = 30
_DIFF_FILES = 5


class GenerateError(Exception):
    """An input the generators need is missing or malformed (one line for the user)."""


def generate(root: Path) -> dict[Path, str]:
    """Path under ``root`` → text of every generated file, from the code and ``root``'s chart
    and docs. Writes nothing under ``root`` (the chart is rendered from a scratch copy)."""
    files: dict[Path, str] = {
        DASHBOARDS / name: render(model) for name, model in build_dashboards().items()
    }
    files[RULES / "alerts.yml"] = render_rules()
    schema = settings_schema(json.loads(_read(root, SCHEMA)))
    files[SCHEMA] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    for page, blocks in TABLES.items():
        try:
            files[page] = update_blocks(_read(root, page), blocks, page=str(page))
        except ValueError as exc:
            raise GenerateError(str(exc)) from None
    values_table = render_table(value_rows(_read(root, CHART / "values.yaml")))
    try:
        files[CHART_README] = replace_block(_read(root, CHART_README), values_table)
    except ValueError as exc:
        raise GenerateError(f"{CHART_README}: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="generate-") as scratch:
        chart = Path(scratch) / CHART.name
        shutil.copytree(root / CHART, chart)
        for owned in (DASHBOARDS, RULES):
            shutil.rmtree(chart / owned.relative_to(CHART), ignore_errors=True)
        for path, text in files.items():
            if path.is_relative_to(CHART):
                (chart / path.relative_to(CHART)).parent.mkdir(parents=True, exist_ok=True)
                (chart / path.relative_to(CHART)).write_text(text)
        for rel, text in render_tree(chart).items():
            files[Path("k8s") / rel] = text
    return files


def _read(root: Path, path: Path) -> str:
    try:
        return (root / path).read_text()
    except OSError as exc:
        raise GenerateError(f"cannot read {path}: {exc.strerror}") from None


def stale(root: Path, files: Mapping[Path, str]) -> list[Path]:
    """Generated files that differ from ``files`` or are missing, then files in an
    :data:`OWNED` folder that nothing generates any more."""
    changed = [
        p for p, text in files.items() if not (root / p).is_file() or (root / p).read_text() != text
    ]
    for folder in OWNED:
        for path in sorted((root / folder).rglob("*")) if (root / folder).is_dir() else []:
            if path.is_file() and path.relative_to(root) not in files:
                changed.append(path.relative_to(root))
    return changed


def _origin(path: Path) -> str:
    if path.is_relative_to(DASHBOARDS):
        return "tools/dashboards.py"
    if path.is_relative_to(RULES):
        return "tools/alerts.py"
    if path == SCHEMA:
        return "loadtest/settings.py (its settings list)"
    if path in TABLES:
        return "tools/docs_tables.py (its marked tables)"
    if path == CHART_README:
        return "helm/voice-loadtest/values.yaml's `# --` comments (tools/helm_docs.py)"
    return "the chart (helm/voice-loadtest), rendered by tools/k8s_manifests.py"


def _report(root: Path, path: Path, files: Mapping[Path, str], *, diff: bool) -> None:
    if path not in files:
        print(f"check-generated: {path} is generated by nothing any more", file=sys.stderr)
        return
    if not (root / path).is_file():
        print(f"check-generated: {path} is missing (from {_origin(path)})", file=sys.stderr)
        return
    print(f"check-generated: {path} differs from {_origin(path)}", file=sys.stderr)
    if not diff:
        return
    lines = list(
        difflib.unified_diff(
            (root / path).read_text().splitlines(),
            files[path].splitlines(),
            f"{path} (committed)",
            f"{path} (generated)",
            lineterm="",
        )
    )
    for line in lines[:_DIFF_LINES]:
        print(f"    {line}", file=sys.stderr)
    if len(lines) > _DIFF_LINES:
        print(f"    … {len(lines) - _DIFF_LINES} more diff lines", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.generate",
        description="Regenerate every committed file that derives from code "
        "(dashboards, alert rules, chart schema settings, doc tables, k8s/).",
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a file is out of date"
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        files = generate(root)
    except GenerateError as exc:
        print(f"generate: error: {exc}", file=sys.stderr)
        return 2
    changed = stale(root, files)
    if args.check:
        for index, path in enumerate(changed):  # diffs of the first few, then names only
            _report(root, path, files, diff=index < _DIFF_FILES)
        if changed:
            print(
                f"check-generated: {len(changed)} file(s) out of date: edit the generator, not "
                "its output, then run `make generate` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"check-generated: {len(files)} generated files up to date")
        return 0
    for path in changed:
        target = root / path
        if path in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[path])
            print(f"generate: wrote {path}")
        else:
            target.unlink()
            print(f"generate: removed {path}")
    print(f"generate: {len(files)} files, {len(changed)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
