from __future__ import annotations

import pytest

from loadtest.settings import SETTINGS
from tests.conftest import REPO_ROOT
from tools.docs_tables import TABLES, render_settings_table, update_blocks


def test_each_generated_table_matches_the_code() -> None:
    for page, blocks in TABLES.items():
        text = (REPO_ROOT / page).read_text()
        assert update_blocks(text, blocks, page=str(page)) == text, f"{page}: run make generate"
    for knob in SETTINGS.values():
        assert f"`{knob.env}`" in render_settings_table()


def test_only_the_marked_block_is_rewritten() -> None:
    text = "intro\n<!-- t:start -->\nold\n<!-- t:end -->\nrest\n"
    assert update_blocks(text, {"t": lambda: "new"}, page="p.md") == (
        "intro\n<!-- t:start -->\nnew\n<!-- t:end -->\nrest\n"
    )


@pytest.mark.parametrize("text", ["no markers\n", "<!-- t:start -->\nhalf a block\n"])
def test_a_page_without_its_markers_fails_loudly(text: str) -> None:
    with pytest.raises(ValueError, match=r"p\.md has no <!-- t:start --> … <!-- t:end --> block"):
        update_blocks(text, {"t": lambda: "new"}, page="p.md")
