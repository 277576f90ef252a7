"""Pure push/pull planning, download verification, name safety and redaction."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from loadtest.audio.manifest import MANIFEST_NAME, ManifestEntry, sha256_hex
from loadtest.errors import StorageError
from loadtest.storage.base import (
    LocalFile,
    PullItem,
    StoredObject,
    check_name,
    plan_pull,
    plan_push,
    redact,
    safe_url,
    verify_chunks,
)

A, B, C = "a_turn_1_of_2_x.pcm", "a_turn_2_of_2_y.pcm", "old_turn_1_of_1_z.pcm"
SHA_A, SHA_B, SHA_C = (sha256_hex(n.encode()) for n in (A, B, C))
MANIFEST = LocalFile(MANIFEST_NAME, 100, "m" * 64)


def _entry(name: str, sha: str | None) -> ManifestEntry:
    return ManifestEntry(
        filename=name, text="t", voice="v", engine="e", sample_rate=16000,
        duration_seconds=1.0, speech_start_ms=0, speech_end_ms=20, scenario="a",
        turn_index=1, turn_count=2, hash="h", sha256=sha, created_at="",
    )  # fmt: skip


# --- plan_push ----------------------------------------------------------------------------


def test_push_to_an_empty_store_uploads_everything_manifest_last() -> None:
    plan = plan_push([LocalFile(B, 2, SHA_B), LocalFile(A, 1, SHA_A)], MANIFEST, [])
    assert plan.upload == (A, B)
    assert plan.manifest_changed
    assert plan.order == (A, B, MANIFEST_NAME)
    assert plan.delete == ()


def test_push_skips_files_whose_sha_and_size_match() -> None:
    remote = [
        StoredObject(A, 1, SHA_A),
        StoredObject(B, 2, SHA_C),  # other bytes
        StoredObject(MANIFEST_NAME, 100, "m" * 64),
    ]
    plan = plan_push([LocalFile(A, 1, SHA_A), LocalFile(B, 2, SHA_B)], MANIFEST, remote)
    assert plan.upload == (B,)
    assert plan.unchanged == (A,)
    assert not plan.manifest_changed
    assert plan.order == (B,)


@pytest.mark.parametrize(
    "remote",
    [StoredObject(A, 9, SHA_A), StoredObject(A, 1, None)],
    ids=["size differs", "no metadata"],
)
def test_push_uploads_when_size_differs_or_metadata_is_missing(remote: StoredObject) -> None:
    assert plan_push([LocalFile(A, 1, SHA_A)], MANIFEST, [remote]).upload == (A,)


def test_push_prunes_only_with_delete_and_never_the_manifest() -> None:
    remote = [
        StoredObject(A, 1, SHA_A),
        StoredObject(C, 3, SHA_C),
        StoredObject(MANIFEST_NAME, 1, None),
    ]
    files = [LocalFile(A, 1, SHA_A)]
    assert plan_push(files, MANIFEST, remote).delete == ()
    plan = plan_push(files, MANIFEST, remote, delete=True)
    assert plan.delete == (C,)
    assert plan.order == (MANIFEST_NAME,)


def test_push_refuses_unsafe_names() -> None:
    with pytest.raises(StorageError, match="not a plain file name"):
        plan_push([LocalFile("../x.pcm", 1, SHA_A)], MANIFEST, [])


# --- plan_pull ----------------------------------------------------------------------------


def test_pull_downloads_missing_and_wrong_files_and_keeps_correct_ones() -> None:
    entries = [_entry(A, SHA_A), _entry(B, SHA_B)]
    remote = [StoredObject(A, 1, SHA_A), StoredObject(B, 2, SHA_B)]
    plan = plan_pull(entries, remote, {A: SHA_A})
    assert plan.present == (A,)
    assert plan.download == (PullItem(B, SHA_B, 2),)
    plan = plan_pull(entries, remote, {A: SHA_C, C: SHA_C})
    assert [item.name for item in plan.download] == [A, B]
    assert plan.stray == (C,)


def test_pull_verifies_against_the_manifest_not_the_metadata() -> None:
    # Metadata can be stale (a tampered blob keeps its metadata); the manifest rules.
    plan = plan_pull([_entry(A, SHA_A)], [StoredObject(A, 1, SHA_C)], {})
    assert plan.download == (PullItem(A, SHA_A, 1),)


def test_pull_of_a_legacy_manifest_uses_the_metadata_sha() -> None:
    plan = plan_pull([_entry(A, None)], [StoredObject(A, 1, SHA_A)], {A: SHA_A})
    assert plan.present == (A,)
    with pytest.raises(StorageError, match=r"no sha256 to verify 1 file\(s\) against: " + A):
        plan_pull([_entry(A, None)], [StoredObject(A, 1, None)], {})


def test_pull_fails_when_the_store_lacks_a_named_file() -> None:
    with pytest.raises(StorageError, match=rf"missing from the store: {B} \(push"):
        plan_pull([_entry(A, SHA_A), _entry(B, SHA_B)], [StoredObject(A, 1, SHA_A)], {})


def test_pull_refuses_a_manifest_that_escapes_the_folder() -> None:
    with pytest.raises(StorageError, match="not a plain file name"):
        plan_pull([_entry("../../etc/x.pcm", SHA_A)], [], {})


@pytest.mark.parametrize(
    "name", ["", ".", "..", ".hidden", "a/b.pcm", "a\\b.pcm", "a\nb", "x" * 256]
)
def test_check_name_rejects(name: str) -> None:
    with pytest.raises(StorageError):
        check_name(name)


# --- verify_chunks ------------------------------------------------------------------------


def test_verify_chunks_returns_the_bytes_or_names_the_file() -> None:
    data = b"abc" * 1000
    assert verify_chunks(iter([data[:10], data[10:]]), sha256_hex(data), name=A) == data
    with pytest.raises(StorageError, match=rf"^{A}: sha256 mismatch \(expected "):
        verify_chunks(iter([data, b"!"]), sha256_hex(data), name=A)


def test_verify_chunks_lets_an_interrupted_stream_fail() -> None:
    def broken() -> Iterator[bytes]:
        yield b"abc"
        raise StorageError("connection reset")

    with pytest.raises(StorageError, match="connection reset"):
        verify_chunks(broken(), SHA_A, name=A)


# --- secrets ------------------------------------------------------------------------------


def test_redact_strips_keys_and_sas_tokens() -> None:
    text = (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=S3cr3tKey==;"
        " GET https://acct.blob.core.windows.net/c/x.pcm?sv=2022&sig=S1GNATURE%3D&se=2030 failed"
        " SharedAccessSignature=sv=1&sig=OTHER"
    )
    cleaned = redact(text)
    for secret in ("S3cr3tKey", "S1GNATURE", "OTHER"):
        assert secret not in cleaned
    assert "https://acct.blob.core.windows.net/c/x.pcm?***" in cleaned
    assert "AccountName=acct" in cleaned


def test_safe_url_drops_query_userinfo_and_fragment() -> None:
    assert safe_url("https://u:p@acct.blob.core.windows.net:443/c?sig=S#f") == (
        "https://acct.blob.core.windows.net:443/c"
    )
    assert safe_url("http://[::1") == "<invalid url>"


def test_core_modules_import_without_azure() -> None:
    code = (
        "import sys; import loadtest.storage.base, loadtest.storage.settings, "
        "loadtest.storage.local, loadtest.storage.sync; "
        "bad = [m for m in sys.modules if m.startswith(('azure', 'gevent'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
