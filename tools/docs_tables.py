"""Generate the README's reference tables from the code, so they cannot drift (edge: files).

``python -m tools.docs_tables README.md`` rewrites the block between
``<!-- settings-table:start -->`` and ``<!-- settings-table:end -->``; a unit test fails when
the committed README differs from what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loadtest.settings import SETTINGS

__all__ = ["render_settings_table", "update_readme"]

_START, _END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def render_settings_table() -> str:
    """The markdown table of every caller knob: variable, flag, default, meaning."""
    rows = ["| variable | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for knob in SETTINGS.values():
        default = f"`{knob.default}`" if knob.default else "(empty)"
        rows.append(f"| `{knob.env}` | `{knob.option}` | {default} | {knob.help} |")
    return "\n".join(rows)


def update_readme(text: str) -> str:
    """``text`` with the settings block replaced by :func:`render_settings_table`."""
    head, _, rest = text.partition(_START)
    _, _, tail = rest.partition(_END)
    return f"{head}{_START}\n{render_settings_table()}\n{_END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(update_readme(path.read_text()))
