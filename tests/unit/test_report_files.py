"""Report files: the reports folder is checked before a run; a summary that cannot be
written where asked is kept elsewhere, and the caller is told where (one line)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from loadtest.errors import ReportsError
from loadtest.metrics import report_cli
from loadtest.metrics.report_cli import check_reports_dir, save_summary


def test_a_missing_reports_folder_is_created_and_nothing_stays_behind(tmp_path: Path) -> None:
    reports = tmp_path / "a" / "reports"
    check_reports_dir(reports)
    assert reports.is_dir() and list(reports.iterdir()) == []


def test_a_file_in_the_way_is_named(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("x")
    with pytest.raises(ReportsError, match="--reports-dir .*reports is a file, not a folder"):
        check_reports_dir(tmp_path / "reports")
    with pytest.raises(ReportsError, match="cannot be created: Not a directory") as caught:
        check_reports_dir(tmp_path / "reports" / "sub", flag="the folder of --csv")
    assert caught.value.exit_code == 2 and "the folder of --csv" in str(caught.value)


def test_too_little_room_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_cli, "MIN_FREE_BYTES", 1 << 62)  # more than any disk has
    with pytest.raises(ReportsError, match="MiB free; the reports need"):
        check_reports_dir(tmp_path)


def test_save_summary_writes_where_asked(tmp_path: Path) -> None:
    path = tmp_path / "out" / "summary.json"
    assert save_summary({"slo": {"verdict": "pass"}}, path) == (path, None)
    assert json.loads(path.read_text()) == {"slo": {"verdict": "pass"}}


def test_save_summary_keeps_the_summary_in_a_temporary_file_when_the_folder_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "spare"))
    (tmp_path / "spare").mkdir()
    (tmp_path / "blocked").write_text("a file where the folder should be")
    where, problem = save_summary({"n": 1}, tmp_path / "blocked" / "summary.json")
    assert where is not None and where.parent == tmp_path / "spare"
    assert json.loads(where.read_text()) == {"n": 1}
    assert problem is not None and "\n" not in problem
    assert problem.endswith(f"the summary was saved to {where} instead")


def test_save_summary_prints_it_when_no_file_can_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    (tmp_path / "blocked").write_text("x")
    where, problem = save_summary({"n": 2}, tmp_path / "blocked" / "summary.json")
    assert where is None and problem is not None and "printed to standard output" in problem
    assert json.loads(capsys.readouterr().out) == {"n": 2}
