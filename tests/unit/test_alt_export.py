"""The exported folder: files, audio (plain or zipped), refusals before anything is written."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtest.alt.config import ExportRequest
from loadtest.alt.export import export_test
from loadtest.alt.limits import AltLimits
from loadtest.audio.cache import load_cache
from loadtest.audio.manifest import MANIFEST_NAME, ManifestEntry, sha256_hex, to_line
from loadtest.errors import AudioError, ConfigError

URL = "wss://agent.example.com/api/v1/media/stream"


def write_cache(folder: Path, sizes: list[int], seed: int = 3) -> Path:
    """A verified current-format cache of noise clips of ``sizes`` bytes (no VAD needed)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, size in enumerate(sizes, start=1):
        data = rng.randbytes(size)
        name = f"scn_turn_{index}_of_{len(sizes)}_{index:04d}.pcm"
        (folder / name).write_bytes(data)
        entry = ManifestEntry(
            filename=name, text=f"turn {index}", voice="v", engine="espeak", sample_rate=16000,
            duration_seconds=round(size / 32000, 3), speech_start_ms=0, speech_end_ms=20,
            scenario="scn", turn_index=index, turn_count=len(sizes), hash=f"{index:04d}",
            sha256=sha256_hex(data), created_at="2026-01-01T00:00:00+00:00",
        )  # fmt: skip
        lines.append(to_line(entry))
    (folder / MANIFEST_NAME).write_text("\n".join(lines) + "\n")
    return folder


def _yaml(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((out / "alt-config.yaml").read_text())
    return loaded


def test_plain_export_lists_every_file_it_writes(tmp_path: Path) -> None:
    cache = write_cache(tmp_path / "cache", [3200, 6400, 9600])
    result = export_test(ExportRequest(ws_url=URL, test_id="voice-ci"), tmp_path / "out",
                         pcm_dir=cache)  # fmt: skip
    out = result.out_dir
    doc = _yaml(out)
    assert doc["testId"] == "voice-ci" and doc["testPlan"] == "locustfile.py"
    assert doc["configurationFiles"][:3] == ["requirements.txt", "voice_loadtest.pyz",
                                             MANIFEST_NAME]  # fmt: skip
    assert "zipArtifacts" not in doc and result.zips == ()
    listed = {"alt-config.yaml", doc["testPlan"], *doc["configurationFiles"]}
    assert {p.name for p in out.iterdir()} == listed
    exported = load_cache(out)
    assert [c.pcm for c in exported.scenarios["scn"]] == [
        c.pcm for c in load_cache(cache).scenarios["scn"]
    ]
    assert not list(tmp_path.glob(".out.*"))  # no staging folder left behind


def test_audio_over_the_per_file_limit_goes_into_zip_artifacts(tmp_path: Path) -> None:
    cache = write_cache(tmp_path / "cache", [200_000] * 5)
    # 1 MB of audio > 600 kB per file; the harness archive (~0.3 MB) must still fit.
    limits = AltLimits(max_file_bytes=600_000)
    result = export_test(ExportRequest(ws_url=URL), tmp_path / "out", pcm_dir=cache,
                         limits=limits)  # fmt: skip
    doc = _yaml(result.out_dir)
    assert doc["zipArtifacts"] == ["voice-audio-1.zip", "voice-audio-2.zip", "voice-audio-3.zip"]
    assert "totals 1.0 MB" in result.zip_reason
    assert not any(name.endswith(".pcm") for name in doc["configurationFiles"])
    assert MANIFEST_NAME in doc["configurationFiles"]
    members = []
    for name in doc["zipArtifacts"]:
        path = result.out_dir / name
        assert path.stat().st_size <= limits.max_file_bytes
        with zipfile.ZipFile(path) as archive:
            members += archive.namelist()
    assert sorted(members) == sorted(c.entry.filename for c in load_cache(cache).scenarios["scn"])


def test_audio_too_large_for_five_zips_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    cache = write_cache(tmp_path / "cache", [200_000] * 11)
    with pytest.raises(AudioError, match="needs 6 ZIP artifacts"):
        export_test(ExportRequest(ws_url=URL), tmp_path / "out", pcm_dir=cache,
                    limits=AltLimits(max_file_bytes=600_000))  # fmt: skip
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_missing_audio_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="audio cache folder not found"):
        export_test(ExportRequest(ws_url=URL), tmp_path / "out", pcm_dir=tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioError, match="no audio in the cache"):
        export_test(ExportRequest(ws_url=URL), tmp_path / "out", pcm_dir=tmp_path / "empty")
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_replaced_only_when_it_is_an_export(tmp_path: Path) -> None:
    cache = write_cache(tmp_path / "cache", [3200])
    out = tmp_path / "out"
    export_test(ExportRequest(ws_url=URL, test_id="first"), out, pcm_dir=cache)
    with pytest.raises(ConfigError, match="not empty; pass --force"):
        export_test(ExportRequest(ws_url=URL), out, pcm_dir=cache)
    export_test(ExportRequest(ws_url=URL, test_id="second"), out, pcm_dir=cache, force=True)
    assert _yaml(out)["testId"] == "second"
    foreign = tmp_path / "src"
    foreign.mkdir()
    (foreign / "main.py").write_text("precious\n")
    with pytest.raises(ConfigError, match="not an ALT export; refusing"):
        export_test(ExportRequest(ws_url=URL), foreign, pcm_dir=cache, force=True)
    assert (foreign / "main.py").read_text() == "precious\n"


def test_custom_slo_is_shipped_and_drives_the_criteria(tmp_path: Path) -> None:
    cache = write_cache(tmp_path / "cache", [3200])
    slo = tmp_path / "my-slo.yaml"
    slo.write_text("ttfb_p95_ms: {target: 800, acceptable: 1200}\nbarge_in_p95_ms: null\n")
    result = export_test(ExportRequest(ws_url=URL), tmp_path / "out", pcm_dir=cache,
                         slo_file=slo)  # fmt: skip
    doc = _yaml(result.out_dir)
    assert "slo.yaml" in doc["configurationFiles"]
    assert (result.out_dir / "slo.yaml").read_text() == slo.read_text()
    criteria = doc["failureCriteria"]["clientMetrics"]
    assert {"ttfb": "p95(response_time_ms) > 1200"} in criteria
    assert not any("barge_in" in item for item in criteria if isinstance(item, dict))


def test_bad_slo_file_is_refused_before_writing(tmp_path: Path) -> None:
    cache = write_cache(tmp_path / "cache", [3200])
    slo = tmp_path / "slo.yaml"
    slo.write_text("ttfb_p95_ms: fast\n")
    with pytest.raises(ConfigError, match="slo.yaml: ttfb_p95_ms"):
        export_test(ExportRequest(ws_url=URL), tmp_path / "out", pcm_dir=cache, slo_file=slo)
    assert not (tmp_path / "out").exists()


def test_legacy_cache_is_exported_with_a_complete_manifest(
    tmp_path: Path, azure_sample_dir: Path
) -> None:
    result = export_test(ExportRequest(ws_url=URL), tmp_path / "out", pcm_dir=azure_sample_dir)
    exported = load_cache(result.out_dir)
    entries = [clip.entry for clips in exported.scenarios.values() for clip in clips]
    assert entries and all(e.sha256 and not e.legacy for e in entries)
    assert all(e.speech_end_ms is not None for e in entries)
    assert not any(p.suffix == ".json" for p in result.out_dir.iterdir())
