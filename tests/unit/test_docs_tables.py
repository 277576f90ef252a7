from __future__ import annotations

from loadtest.settings import SETTINGS
from tests.conftest import REPO_ROOT
from tools.docs_tables import render_settings_table, update_readme


def test_readme_settings_table_matches_the_code() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert update_readme(readme) == readme, "run: python -m tools.docs_tables README.md"
    for knob in SETTINGS.values():
        assert f"`{knob.env}`" in render_settings_table()
