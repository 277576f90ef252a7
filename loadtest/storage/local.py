"""A folder as an :class:`~loadtest.storage.base.AudioStore` (edge: files; the real fake).

Layout: the folder ``root`` is the container; objects live in ``root/<prefix>/<name>`` and
each object's metadata in ``root/<prefix>/.meta/<name>.json``. Writes are atomic (temp file +
rename). Used by unit tests in place of Blob Storage, and usable for a shared mount.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from loadtest.audio.cache import write_bytes_atomic
from loadtest.errors import StorageError
from loadtest.storage.base import METADATA_SHA256, ObjectNotFound, StoredObject, check_name
from loadtest.storage.settings import normalize_prefix

__all__ = ["LocalStore"]

_META_DIR = ".meta"


class LocalStore:
    """Objects as files under ``root/prefix``; ``chunk_size`` bytes per :meth:`get` chunk."""

    def __init__(self, root: Path, prefix: str = "", *, chunk_size: int = 64 * 1024) -> None:
        self._root = root
        self._prefix = normalize_prefix(prefix, source="prefix")
        self._base = root / self._prefix if self._prefix else root
        self._chunk_size = chunk_size

    @property
    def location(self) -> str:
        return f"{self._root}/{self._prefix}"

    def _path(self, name: str) -> Path:
        return self._base / check_name(name)

    def _meta_path(self, name: str) -> Path:
        return self._base / _META_DIR / f"{check_name(name)}.json"

    def create_container(self) -> bool:
        created = not self._root.is_dir()
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self._root}: {exc.strerror or exc}") from exc
        return created

    def list_objects(self) -> list[StoredObject]:
        if not self._root.is_dir():
            raise StorageError(
                f"container folder {self._root} not found (push with --create-container)"
            )
        if not self._base.is_dir():
            return []
        objects = []
        try:
            for path in sorted(self._base.iterdir()):
                if path.name.startswith(".") or not path.is_file():
                    continue
                stat = path.stat()
                objects.append(
                    StoredObject(
                        name=path.name,
                        size=stat.st_size,
                        sha256=self._metadata(path.name).get(METADATA_SHA256),
                        last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
                    )
                )
        except OSError as exc:
            raise StorageError(f"cannot list {self.location}: {exc.strerror or exc}") from exc
        return objects

    def _metadata(self, name: str) -> dict[str, str]:
        try:
            data = json.loads(self._meta_path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no metadata, as for a blob uploaded by another tool
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, name: str) -> Iterator[bytes]:
        path = self._path(name)
        if not self._root.is_dir():
            raise StorageError(f"container folder {self._root} not found")
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(self._chunk_size):
                    yield chunk
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"{self.location}{name}: not found") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def put(self, name: str, source: Path, *, sha256: str) -> None:
        target, meta = self._path(name), self._meta_path(name)
        try:
            data = source.read_bytes()
            meta.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot put {name}: {exc.strerror or exc}") from exc
        write_bytes_atomic(target, data)
        write_bytes_atomic(meta, json.dumps({METADATA_SHA256: sha256}).encode("utf-8"))

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink(missing_ok=True)
            self._meta_path(name).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {self.location}{name}: {exc.strerror}") from exc

    def __repr__(self) -> str:
        return f"LocalStore({os.fspath(self._root)!r}, prefix={self._prefix!r})"
