"""Push and pull through the folder-backed store: plans, verification, failure safety."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.audio.cache import load_cache
from loadtest.audio.generate import GenerateOptions, generate_audio
from loadtest.audio.manifest import MANIFEST_NAME, sha256_hex
from loadtest.audio.scenarios import BUILTIN_SCENARIOS
from loadtest.errors import AudioError, ConfigError, StorageError
from loadtest.storage.base import StoredObject
from loadtest.storage.local import LocalStore
from loadtest.storage.sync import pull_cache, push_cache
from tests.signals import ToneEngine


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    out = tmp_path / "cache"
    generate_audio(
        [BUILTIN_SCENARIOS["quick_question"]], ToneEngine(), GenerateOptions(out_dir=out)
    )
    return out


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "remote", "caches/v1/", chunk_size=4096)
    store.create_container()
    return store


def _pcm_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.pcm"))


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


class RecordingStore:
    """Wraps a store; records puts and what a reader would list when the manifest lands."""

    def __init__(self, inner: LocalStore) -> None:
        self.inner = inner
        self.puts: list[str] = []
        self.listed_at_manifest: set[str] | None = None

    @property
    def location(self) -> str:
        return self.inner.location

    def create_container(self) -> bool:
        return self.inner.create_container()

    def list_objects(self) -> list[StoredObject]:
        return self.inner.list_objects()

    def get(self, name: str) -> Iterator[bytes]:
        return self.inner.get(name)

    def put(self, name: str, source: Path, *, sha256: str) -> None:
        if name == MANIFEST_NAME:
            self.listed_at_manifest = {o.name for o in self.inner.list_objects()}
        self.puts.append(name)
        self.inner.put(name, source, sha256=sha256)

    def delete(self, name: str) -> None:
        self.inner.delete(name)


class FlakyStore(RecordingStore):
    """Serves ``broken`` as one chunk, then fails like a dropped connection."""

    def __init__(self, inner: LocalStore, broken: str) -> None:
        super().__init__(inner)
        self.broken = broken

    def get(self, name: str) -> Iterator[bytes]:
        if name != self.broken:
            yield from self.inner.get(name)
            return
        chunks = self.inner.get(name)
        yield next(chunks)
        raise StorageError(f"download {name}: connection reset by peer")


def test_round_trip_then_load(cache_dir: Path, store: LocalStore, tmp_path: Path) -> None:
    result = push_cache(store, cache_dir)
    assert result.plan.order[-1] == MANIFEST_NAME
    assert len(result.plan.upload) == 3
    target = tmp_path / "pulled"
    pulled = pull_cache(store, target, concurrency=2)
    assert len(pulled.plan.download) == 3 and pulled.manifest_written
    assert (target / MANIFEST_NAME).read_bytes() == (cache_dir / MANIFEST_NAME).read_bytes()
    cache = load_cache(target)
    assert [c.entry.turn_index for c in cache.scenarios["quick_question"]] == [1, 2, 3]
    assert _leftovers(target) == []


def test_re_push_uploads_nothing_and_re_pull_downloads_nothing(
    cache_dir: Path, store: LocalStore, tmp_path: Path
) -> None:
    push_cache(store, cache_dir)
    recorder = RecordingStore(store)
    again = push_cache(recorder, cache_dir)
    assert recorder.puts == []
    assert len(again.plan.unchanged) == 3 and not again.plan.manifest_changed
    pull_cache(store, tmp_path / "pulled")
    second = pull_cache(store, tmp_path / "pulled")
    assert second.plan.download == () and len(second.plan.present) == 3
    assert not second.manifest_written


def test_manifest_is_uploaded_last_after_every_file_it_names(
    cache_dir: Path, store: LocalStore
) -> None:
    recorder = RecordingStore(store)
    push_cache(recorder, cache_dir, concurrency=3)
    assert recorder.puts[-1] == MANIFEST_NAME
    assert recorder.listed_at_manifest == set(_pcm_names(cache_dir))


def test_only_changed_files_are_re_uploaded(cache_dir: Path, store: LocalStore) -> None:
    push_cache(store, cache_dir)
    store.delete(_pcm_names(cache_dir)[0])
    recorder = RecordingStore(store)
    push_cache(recorder, cache_dir)
    assert recorder.puts == [_pcm_names(cache_dir)[0]]


def test_delete_prunes_stale_objects_after_the_manifest(
    cache_dir: Path, store: LocalStore, tmp_path: Path
) -> None:
    stale = tmp_path / "stale.pcm"
    stale.write_bytes(b"\x00\x01" * 50)
    store.put("stale_turn_1_of_1_old.pcm", stale, sha256=sha256_hex(stale.read_bytes()))
    push_cache(store, cache_dir)
    assert "stale_turn_1_of_1_old.pcm" in {o.name for o in store.list_objects()}
    dry = push_cache(store, cache_dir, delete=True, dry_run=True)
    assert dry.plan.delete == ("stale_turn_1_of_1_old.pcm",)
    assert "stale_turn_1_of_1_old.pcm" in {o.name for o in store.list_objects()}
    push_cache(store, cache_dir, delete=True)
    assert {o.name for o in store.list_objects()} == {*_pcm_names(cache_dir), MANIFEST_NAME}


def test_tampered_object_fails_loudly_and_writes_nothing_for_it(
    cache_dir: Path, store: LocalStore, tmp_path: Path
) -> None:
    push_cache(store, cache_dir)
    target = tmp_path / "pulled"
    target.mkdir()
    good, bad, _ = _pcm_names(cache_dir)
    shutil.copy(cache_dir / good, target / good)  # already correct locally
    before = (target / good).stat()
    remote_bad = tmp_path / "remote" / "caches" / "v1" / bad
    data = bytearray(remote_bad.read_bytes())
    data[1000] ^= 0xFF  # same size, metadata untouched
    remote_bad.write_bytes(bytes(data))

    with pytest.raises(StorageError) as info:
        pull_cache(store, target)
    message = str(info.value)
    assert "\n" not in message
    assert f"1 file(s) failed ({bad}); first error: {bad}: sha256 mismatch" in message
    assert not (target / bad).exists()
    assert not (target / MANIFEST_NAME).exists()
    after = (target / good).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _leftovers(target) == []


def test_interrupted_download_leaves_no_partial_file(
    cache_dir: Path, store: LocalStore, tmp_path: Path
) -> None:
    push_cache(store, cache_dir)
    broken = _pcm_names(cache_dir)[1]
    target = tmp_path / "pulled"
    with pytest.raises(StorageError, match=f"failed \\({broken}\\); .*connection reset by peer"):
        pull_cache(FlakyStore(store, broken), target, concurrency=1)
    assert broken not in _pcm_names(target)
    assert len(_pcm_names(target)) == 2  # the others verified and kept
    assert not (target / MANIFEST_NAME).exists() and _leftovers(target) == []
    pull_cache(store, target)  # a retry completes the cache
    load_cache(target)


def test_pull_replaces_a_wrong_local_file(
    cache_dir: Path, store: LocalStore, tmp_path: Path
) -> None:
    push_cache(store, cache_dir)
    target = tmp_path / "pulled"
    pull_cache(store, target)
    name = _pcm_names(target)[0]
    (target / name).write_bytes(b"\x00\x00" * 10)
    result = pull_cache(store, target)
    assert [i.name for i in result.plan.download] == [name]
    load_cache(target)


def test_pull_delete_removes_local_strays(
    cache_dir: Path, store: LocalStore, tmp_path: Path
) -> None:
    push_cache(store, cache_dir)
    target = tmp_path / "pulled"
    target.mkdir()
    (target / "leftover_turn_1_of_1_abc.pcm").write_bytes(b"\x00\x01")
    kept = pull_cache(store, target)
    assert kept.plan.stray == ("leftover_turn_1_of_1_abc.pcm",) and kept.removed == ()
    result = pull_cache(store, target, delete=True)
    assert result.removed == ("leftover_turn_1_of_1_abc.pcm",)
    load_cache(target)


def test_legacy_cache_round_trips(
    azure_sample_dir: Path, store: LocalStore, tmp_path: Path
) -> None:
    push_cache(store, azure_sample_dir)
    names = {o.name for o in store.list_objects()}
    assert MANIFEST_NAME in names and not any(n.endswith(".json") for n in names)
    target = tmp_path / "pulled"
    pull_cache(store, target)  # verified against the sha256 metadata written at push
    assert set(load_cache(target).scenarios) == {"insurance_inquiry", "quick_question"}


def test_push_refuses_a_cache_with_problems(cache_dir: Path, store: LocalStore) -> None:
    name = _pcm_names(cache_dir)[0]
    (cache_dir / name).write_bytes((cache_dir / name).read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(AudioError, match=f"refusing to push .*{name}: sha256 mismatch"):
        push_cache(store, cache_dir)
    assert store.list_objects() == []


def test_push_refuses_a_missing_folder_or_one_without_manifest(
    tmp_path: Path, store: LocalStore, azure_sample_dir: Path
) -> None:
    with pytest.raises(AudioError, match="audio cache folder not found"):
        push_cache(store, tmp_path / "missing")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(next(azure_sample_dir.glob("*.pcm")), bare)
    with pytest.raises(AudioError, match=r"refusing to push .*: no manifest\.jsonl"):
        push_cache(store, bare)


def test_pull_without_a_manifest_says_push_first(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"no manifest\.jsonl in .*push a cache there first"):
        pull_cache(store, tmp_path / "pulled")


def test_pull_detects_a_manifest_changed_under_it(
    cache_dir: Path, store: LocalStore, tmp_path: Path
) -> None:
    push_cache(store, cache_dir)
    remote = tmp_path / "remote" / "caches" / "v1" / MANIFEST_NAME
    remote.write_bytes(remote.read_bytes() + b"\n")
    with pytest.raises(StorageError, match="does not match its metadata"):
        pull_cache(store, tmp_path / "pulled")


@pytest.mark.parametrize("concurrency", [0, 65])
def test_concurrency_is_validated(
    cache_dir: Path, store: LocalStore, tmp_path: Path, concurrency: int
) -> None:
    with pytest.raises(ConfigError, match="--concurrency"):
        pull_cache(store, tmp_path, concurrency=concurrency)
