"""Plain files vs ZIP artifacts on export; reassembly on the engine (pure)."""

from __future__ import annotations

import pytest

from loadtest.alt.audio_plan import AudioFile, plan_restore, plan_upload, zip_name
from loadtest.alt.limits import DEFAULT_LIMITS, AltLimits
from loadtest.errors import AudioError

MB = 1024 * 1024


def _files(*sizes: int) -> list[AudioFile]:
    return [AudioFile(f"clip_{i:03d}.pcm", size) for i, size in enumerate(sizes)]


def test_small_set_is_uploaded_as_plain_files() -> None:
    plan = plan_upload(_files(300_000, 200_000), other_files=4, limits=DEFAULT_LIMITS)
    assert plan.loose == ("clip_000.pcm", "clip_001.pcm") and plan.zips == () and not plan.reason


def test_empty_set_plans_nothing() -> None:
    assert plan_upload([], other_files=4, limits=DEFAULT_LIMITS).loose == ()


def test_one_file_over_the_per_file_limit_zips_the_audio() -> None:
    plan = plan_upload(_files(1 * MB, 51 * MB), other_files=4, limits=DEFAULT_LIMITS)
    assert plan.loose == ()
    assert plan.zips == (("clip_000.pcm",), ("clip_001.pcm",))
    assert "clip_001.pcm is 51.0 MB (> 50 MB per file)" in plan.reason


def test_total_over_the_limit_zips_the_audio_in_bounded_zips() -> None:
    plan = plan_upload(_files(*[20 * MB] * 5), other_files=4, limits=DEFAULT_LIMITS)
    assert "totals 100.0 MB" in plan.reason
    assert [len(z) for z in plan.zips] == [2, 2, 1]  # 40 MB + 40 MB + 20 MB, each <= 50 MB


def test_too_many_files_for_one_test_zips_them_1000_per_zip() -> None:
    plan = plan_upload(_files(*[1000] * 1500), other_files=4, limits=DEFAULT_LIMITS)
    assert "exceed 1000 files per test" in plan.reason
    assert [len(z) for z in plan.zips] == [1000, 500]


def test_lowered_limits_exercise_the_same_rules() -> None:
    limits = AltLimits(max_file_bytes=600, max_files_per_zip=2)
    plan = plan_upload(_files(100, 100, 100, 100, 250), other_files=4, limits=limits)
    assert "totals" in plan.reason
    assert plan.zips == (
        ("clip_000.pcm", "clip_001.pcm"),
        ("clip_002.pcm", "clip_003.pcm"),
        ("clip_004.pcm",),
    )


def test_more_zips_than_alt_allows_is_one_clear_error() -> None:
    with pytest.raises(AudioError, match=r"needs 6 ZIP artifacts but .* allows 5"):
        plan_upload(_files(*[45 * MB] * 6), other_files=4, limits=DEFAULT_LIMITS)


def test_zip_names_count_from_one() -> None:
    assert zip_name(1) == "voice-audio-1.zip"


def test_everything_beside_the_manifest_needs_nothing() -> None:
    plan = plan_restore(["a.pcm", "b.pcm"], {"a.pcm": "/t/a.pcm", "b.pcm": "/t/b.pcm"}, {}, {})
    assert not plan.needed and plan.missing == ()


def test_restore_links_unpacked_copies_and_extracts_packed_ones() -> None:
    plan = plan_restore(
        ["a.pcm", "b.pcm", "c.pcm", "d.pcm"],
        beside={"a.pcm": "/t/a.pcm"},
        elsewhere={"b.pcm": "/t/voice-audio-1/b.pcm", "a.pcm": "/t/old/a.pcm"},
        zipped={"b.pcm": "/t/voice-audio-1.zip", "c.pcm": "/t/voice-audio-2.zip"},
    )
    assert plan.needed
    assert plan.link == (("a.pcm", "/t/a.pcm"), ("b.pcm", "/t/voice-audio-1/b.pcm"))
    assert plan.extract == (("c.pcm", "/t/voice-audio-2.zip"),)
    assert plan.missing == ("d.pcm",)


def test_zip_bound_leaves_room_for_headers_and_incompressible_audio() -> None:
    # 100-byte clips cost 262 bytes zipped at worst: two fit in 600, three do not.
    plan = plan_upload(_files(*[100] * 7), other_files=4, limits=AltLimits(max_file_bytes=600))
    assert [len(z) for z in plan.zips] == [2, 2, 2, 1]


def test_zip_content_is_bounded_by_the_uncompressed_limit_too() -> None:
    limits = AltLimits(max_zip_uncompressed_bytes=250, max_files_per_test=10)
    plan = plan_upload(_files(*[100] * 8), other_files=4, limits=limits)
    assert [len(z) for z in plan.zips] == [2, 2, 2, 2]
