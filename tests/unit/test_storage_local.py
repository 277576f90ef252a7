"""The folder-backed store: the AudioStore contract the Blob store also honours."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.errors import StorageError
from loadtest.storage.base import ObjectNotFound
from loadtest.storage.local import LocalStore


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src.pcm"
    path.write_bytes(b"\x01\x02" * 100)
    return path


def test_put_list_get_delete(tmp_path: Path, source: Path) -> None:
    store = LocalStore(tmp_path / "container", "caches/v1", chunk_size=64)
    assert store.create_container() is True
    assert store.create_container() is False
    assert store.list_objects() == []
    store.put("x.pcm", source, sha256="abc")
    (obj,) = store.list_objects()
    assert (obj.name, obj.size, obj.sha256) == ("x.pcm", 200, "abc")
    chunks = list(store.get("x.pcm"))
    assert len(chunks) == 4 and b"".join(chunks) == source.read_bytes()
    store.delete("x.pcm")
    store.delete("x.pcm")  # idempotent
    assert store.list_objects() == []
    assert store.location.endswith("container/caches/v1/")


def test_missing_container_and_object_are_distinct_errors(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "nope")
    with pytest.raises(StorageError, match="not found") as info:
        store.list_objects()
    assert not isinstance(info.value, ObjectNotFound)
    store.create_container()
    with pytest.raises(ObjectNotFound, match=r"x\.pcm: not found"):
        b"".join(store.get("x.pcm"))


def test_deeper_folders_and_foreign_files_are_listed_sensibly(tmp_path: Path) -> None:
    root = tmp_path / "container"
    store = LocalStore(root)
    store.create_container()
    (root / "deeper").mkdir()
    (root / "deeper" / "y.pcm").write_bytes(b"yy")  # another prefix: not ours
    (root / "foreign.pcm").write_bytes(b"ff")  # not put by us: no metadata
    (obj,) = store.list_objects()
    assert (obj.name, obj.sha256) == ("foreign.pcm", None)


def test_names_are_checked(tmp_path: Path, source: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(StorageError, match="not a plain file name"):
        store.put("../escape.pcm", source, sha256="abc")
