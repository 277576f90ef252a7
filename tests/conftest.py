"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def azure_sample_dir() -> Path:
    """The real Azure TTS caller audio (legacy-format cache), read-only."""
    path = SHARED_DATA / "azure-tts-sample"
    if not (path / "manifest.jsonl").is_file():
        pytest.fail(f"shared test data missing at {path}; tests need ../shared/data")
    return path
