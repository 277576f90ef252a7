"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def azure_sample_dir() -> Path:
    """The real Azure TTS caller audio (legacy-format cache, see its README), read-only."""
    path = TEST_DATA / "azure-tts-sample"
    if not (path / "manifest.jsonl").is_file():
        pytest.fail(f"test data missing at {path}; it is part of the repository")
    return path


def espeak_cache(out: Path, sample_rate: int = 16000) -> Path:
    """Both built-in scenarios synthesised offline with espeak-ng into ``out`` at
    ``sample_rate`` (real engine, real VAD: the boundaries are found at that rate)."""
    from loadtest.audio.generate import GenerateOptions, generate_audio
    from loadtest.audio.scenarios import BUILTIN_SCENARIOS
    from loadtest.audio.tts import make_engine

    options = GenerateOptions(out_dir=out, sample_rate=sample_rate)
    generate_audio(list(BUILTIN_SCENARIOS.values()), make_engine("espeak", {}), options)
    return out


@pytest.fixture(scope="session")
def espeak_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both built-in scenarios synthesised offline with espeak-ng at 16 kHz."""
    return espeak_cache(tmp_path_factory.mktemp("espeak-cache"))
