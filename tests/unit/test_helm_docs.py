"""tools/helm_docs.py: the chart README's values table follows values.yaml's ``# --`` comments."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tools.helm_docs import CHART, Row, main, render_table, replace_block, value_rows

SAMPLE = """\
# A section comment, not documentation.
global:
  # -- Registry host
  # for every image.
  imageRegistry: ""
# -- How it runs
mode: interactive
plain:
  leaf: 3
  nested: {a: 1}
# -- The whole block, one row.
security:
  runAsUser: 10001
  # -- but this child has its own.
  fsGroup: 10001
  other: [x]
flag: true
"""


def test_rows_follow_the_comments_and_leaves() -> None:
    assert value_rows(SAMPLE) == [
        Row("global.imageRegistry", "string", '""', "Registry host for every image."),
        Row("mode", "string", '"interactive"', "How it runs"),
        Row("plain.leaf", "int", "3", ""),
        Row("plain.nested.a", "int", "1", ""),
        Row("security", "object", '{"runAsUser":10001,"fsGroup":10001,"other":["x"]}',
            "The whole block, one row."),
        Row("security.fsGroup", "int", "10001", "but this child has its own."),
        Row("flag", "bool", "true", ""),
    ]  # fmt: skip


def test_table_escapes_pipes_and_replaces_only_its_block() -> None:
    table = render_table([Row("a", "string", '"x|y"', "one | two")])
    assert '`"x\\|y"`' in table and "one \\| two" in table
    readme = "intro\n<!-- values-table:start -->\nold\n<!-- values-table:end -->\nend\n"
    assert replace_block(readme, "NEW") == (
        "intro\n<!-- values-table:start -->\nNEW\n<!-- values-table:end -->\nend\n"
    )
    with pytest.raises(ValueError, match="no <!-- values-table:start -->"):
        replace_block("no markers", "NEW")


def test_chart_readme_is_up_to_date() -> None:
    chart = REPO_ROOT / CHART
    readme = (chart / "README.md").read_text()
    table = render_table(value_rows((chart / "values.yaml").read_text()))
    assert replace_block(readme, table) == readme, "run `make generate`"
    documented = {row.key for row in value_rows((chart / "values.yaml").read_text())}
    assert {"global.imageRegistry", "master.ingress.allowAnonymous", "audio.existingClaim",
            "scenarios.configMap", "metrics.serviceMonitor.relabelings"} <= documented  # fmt: skip


def test_check_mode_fails_on_drift_and_the_command_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / CHART
    shutil.copytree(REPO_ROOT / CHART, copy)
    assert main(["--root", str(tmp_path), "--check"]) == 0
    values = copy / "values.yaml"
    values.write_text(values.read_text().replace("users: 10", "users: 12"))
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert "out of date: run `make generate`" in capsys.readouterr().err
    before = (copy / "README.md").read_text()
    assert main(["--root", str(tmp_path)]) == 0
    after = (copy / "README.md").read_text()
    assert after != before and "| `load.users` | int | `12` |" in after
    assert main(["--root", str(tmp_path), "--check"]) == 0
