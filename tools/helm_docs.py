"""The chart README's values table, generated from values.yaml's ``# --`` comments.

The comment convention is helm-docs': a ``# -- text`` line (and the ``#`` lines that follow
it) above a key documents that key. ``python -m tools.helm_docs`` rewrites the block between
``<!-- values-table:start -->`` and ``<!-- values-table:end -->`` of
helm/voice-loadtest/README.md; ``--check`` writes nothing and exits 1 when the README differs
(``make generate`` regenerates it with the other generated files).

Which keys get a row: every key with a comment (a map or list with one is shown whole, as
JSON), and every uncommented leaf (scalar, empty map, list) under an uncommented map. Below a
commented map only its commented descendants get rows, so ``podSecurityContext`` is one row,
not seven. The core (:func:`value_rows`, :func:`render_table`, :func:`replace_block`) is pure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CHART", "Row", "main", "render_table", "replace_block", "value_rows"]

CHART = Path("helm/voice-loadtest")
_START, _END = "<!-- values-table:start -->", "<!-- values-table:end -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+|\"[^\"]+\"):(?:\s|$)")
_DOC = re.compile(r"^ *# --(?: (?P<text>.*))?$")
_MORE = re.compile(r"^ *#(?: (?P<text>.*))?$")


@dataclass(frozen=True, slots=True)
class Row:
    """One documented value: dotted key, type, default (JSON) and description."""

    key: str
    type: str
    default: str
    description: str


def _comments(text: str) -> dict[tuple[str, ...], str]:
    """Key path → its ``# --`` description, from the lines of values.yaml."""
    found: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        doc = _DOC.match(line)
        if doc:
            pending = [(doc.group("text") or "").strip()]
            continue
        more = _MORE.match(line)
        if more and pending is not None:
            pending.append((more.group("text") or "").strip())
            continue
        key = _KEY.match(line)
        if key and not line.lstrip().startswith("-"):
            indent = len(key.group("indent"))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, key.group("key").strip('"')))
            if pending is not None:
                found[tuple(k for _, k in stack)] = " ".join(p for p in pending if p)
        if line.strip() and not more:
            pending = None
    return found


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object" if isinstance(value, dict) else "null"


def _has_doc(path: tuple[str, ...], docs: Mapping[tuple[str, ...], str]) -> bool:
    return any(p[: len(path)] == path for p in docs)


def value_rows(text: str) -> list[Row]:
    """The rows of values.yaml's ``text``, in file order."""
    values = yaml.safe_load(text) or {}
    docs = _comments(text)
    rows: list[Row] = []

    def walk(node: Mapping[str, Any], path: tuple[str, ...], under_doc: bool) -> None:
        for key, value in node.items():
            here = (*path, str(key))
            documented = here in docs
            nested = isinstance(value, dict) and bool(value)
            if documented or (not under_doc and not nested):
                default = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                rows.append(Row(".".join(here), _type(value), default, docs.get(here, "")))
            if nested and (not (under_doc or documented) or _has_doc(here, docs)):
                walk(value, here, under_doc or documented)

    walk(values, (), False)
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(rows: Sequence[Row]) -> str:
    """A markdown table of ``rows`` (helm-docs' columns)."""
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for row in rows:
        lines.append(
            f"| `{row.key}` | {row.type} | `{_cell(row.default)}` | {_cell(row.description)} |"
        )
    return "\n".join(lines)


def replace_block(readme: str, table: str) -> str:
    """``readme`` with the text between the values-table markers replaced by ``table``."""
    start, end = readme.find(_START), readme.find(_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {_START} ... {_END} block")
    return readme[: start + len(_START)] + "\n" + table + "\n" + readme[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.helm_docs", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README would change")
    args = parser.parse_args(argv)
    chart = args.root / CHART
    readme_path = chart / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    try:
        updated = replace_block(
            readme, render_table(value_rows((chart / "values.yaml").read_text()))
        )
    except ValueError as exc:
        print(f"helm-docs: {readme_path}: {exc}", file=sys.stderr)
        return 2
    if updated == readme:
        return 0
    if args.check:
        print(f"helm-docs: {readme_path} is out of date: run `make generate`", file=sys.stderr)
        return 1
    readme_path.write_text(updated, encoding="utf-8")
    print(f"helm-docs: wrote {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
