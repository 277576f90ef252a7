"""The docs' reference tables, rendered from the code so they cannot drift (core: pure text).

A generated block sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in a hand-written
page; :data:`TABLES` says which page holds which block. ``make generate`` (:mod:`tools.generate`)
rewrites the blocks and leaves the rest of the page alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from loadtest.settings import SETTINGS

__all__ = ["TABLES", "render_settings_table", "update_blocks"]


def render_settings_table() -> str:
    """The markdown table of every caller knob: variable, flag, default, meaning."""
    rows = ["| variable | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for knob in SETTINGS.values():
        default = f"`{knob.default}`" if knob.default else "(empty)"
        rows.append(f"| `{knob.env}` | `{knob.option}` | {default} | {knob.help} |")
    return "\n".join(rows)


TABLES: dict[Path, dict[str, Callable[[], str]]] = {
    Path("docs/configuration.md"): {"settings-table": render_settings_table},
}
"""Page (relative to the repository root) → block name → renderer."""


def update_blocks(text: str, blocks: dict[str, Callable[[], str]], *, page: str) -> str:
    """``text`` with each named block's body replaced by its renderer's output.

    Raises ``ValueError`` naming ``page`` and the block when a marker is missing, so a page
    that lost its markers fails loudly instead of silently growing a second table."""
    for name, render in blocks.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, found_start, rest = text.partition(start)
        _, found_end, tail = rest.partition(end)
        if not (found_start and found_end):
            raise ValueError(f"{page} has no {start} … {end} block")
        text = f"{head}{start}\n{render()}\n{end}{tail}"
    return text
