"""The audio store port and the pure planning of push and pull (core).

An :class:`AudioStore` is a flat set of named objects (PCM files and ``manifest.jsonl``)
under one prefix of one container, each carrying the ``sha256`` of its bytes as metadata.
Two implementations: :class:`~loadtest.storage.local.LocalStore` (a folder; the real fake used
by unit tests) and :class:`~loadtest.storage.blob.BlobStore` (Azure Blob Storage).

Everything here is pure: :func:`plan_push` and :func:`plan_pull` take listings and hashes and
return what to transfer; :func:`verify_chunks` checks downloaded bytes; :func:`redact` strips
secrets from any text before it reaches a message. Transfers are
:mod:`loadtest.storage.sync`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from loadtest.audio.manifest import MANIFEST_NAME, ManifestEntry
from loadtest.errors import ObjectNotFound, StorageError

__all__ = [
    "METADATA_SHA256",
    "AudioStore",
    "LocalFile",
    "ObjectNotFound",
    "PullItem",
    "PullPlan",
    "PushPlan",
    "StoredObject",
    "check_name",
    "plan_pull",
    "plan_push",
    "redact",
    "safe_url",
    "verify_chunks",
]

METADATA_SHA256 = "sha256"
"""Metadata key holding the hex sha256 of an object's bytes (set on every put)."""

_MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object in a store, as listed. ``name`` is relative to the store's prefix."""

    name: str
    size: int  # bytes
    sha256: str | None  # from metadata; None when the object was not put by voice-loadtest
    last_modified: datetime | None = None


class AudioStore(Protocol):
    """A flat set of named objects with sha256 metadata (the audio cache's remote home).

    Names are plain file names (:func:`check_name`); every method raises
    :class:`~loadtest.errors.StorageError` (one line, no secrets) on failure. Implementations
    are safe to call from several threads at once.
    """

    @property
    def location(self) -> str:
        """Where the store points (URL or folder plus prefix), safe to print."""
        ...

    def create_container(self) -> bool:
        """Create the container if missing; True when it was created."""
        ...

    def list_objects(self) -> list[StoredObject]:
        """Objects directly under the prefix (not in deeper "folders"), sorted by name.

        Raises :class:`StorageError` when the container does not exist.
        """
        ...

    def get(self, name: str) -> Iterator[bytes]:
        """The object's bytes in chunks; errors raise while iterating.

        A missing object raises :class:`ObjectNotFound`; a missing container, plain
        :class:`StorageError`.
        """
        ...

    def put(self, name: str, source: Path, *, sha256: str) -> None:
        """Upload ``source`` as ``name`` (replacing it), with ``sha256`` as metadata."""
        ...

    def delete(self, name: str) -> None:
        """Delete ``name``; deleting a missing object is not an error."""
        ...


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file of the local cache: its name, size in bytes and content sha256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PushPlan:
    """What a push does, in order: :attr:`order` (PCM files, then the manifest), then deletes.

    ``delete`` is empty unless pruning was asked for; it never names a file the new manifest
    names, and runs after the manifest is in place.
    """

    upload: tuple[str, ...]
    unchanged: tuple[str, ...]
    manifest_changed: bool
    delete: tuple[str, ...]

    @property
    def order(self) -> tuple[str, ...]:
        """Every upload in the order to run it: the manifest last."""
        return self.upload + ((MANIFEST_NAME,) if self.manifest_changed else ())


@dataclass(frozen=True, slots=True)
class PullItem:
    """A file to download and the sha256 its bytes must have."""

    name: str
    sha256: str
    size: int | None = None  # bytes, as listed


@dataclass(frozen=True, slots=True)
class PullPlan:
    """What a pull does: download ``download``; ``present`` are already correct locally.

    ``stray`` are local ``*.pcm`` files the manifest does not name (removed by ``--delete``).
    """

    download: tuple[PullItem, ...]
    present: tuple[str, ...]
    stray: tuple[str, ...]


def check_name(name: str) -> str:
    """``name`` if it is a plain file name safe to join to a folder or prefix.

    Rejects path separators, ``.``/``..``, hidden names and control characters, so a
    manifest from a store can never write outside the target folder.
    """
    if (
        not name
        or len(name) > _MAX_NAME
        or "/" in name
        or "\\" in name
        or name.startswith(".")
        or any(ord(ch) < 32 for ch in name)
    ):
        raise StorageError(f"{name!r}: not a plain file name (no folders, no leading dot)")
    return name


def _unchanged(local: LocalFile, remote: StoredObject | None) -> bool:
    return remote is not None and remote.sha256 == local.sha256 and remote.size == local.size


def plan_push(
    files: Sequence[LocalFile],
    manifest: LocalFile,
    remote: Iterable[StoredObject],
    *,
    delete: bool = False,
) -> PushPlan:
    """Plan a push of ``files`` and ``manifest`` onto a store listing ``remote``.

    A file is unchanged when the remote object's sha256 metadata and size match; anything
    else (missing, no metadata, different bytes) is uploaded. With ``delete``, remote objects
    neither in ``files`` nor the manifest are pruned.
    """
    listed = {obj.name: obj for obj in remote}
    upload: list[str] = []
    unchanged: list[str] = []
    for file in sorted(files, key=lambda f: f.name):
        check_name(file.name)
        (unchanged if _unchanged(file, listed.get(file.name)) else upload).append(file.name)
    keep = {file.name for file in files} | {MANIFEST_NAME}
    doomed = tuple(sorted(name for name in listed if name not in keep)) if delete else ()
    return PushPlan(
        upload=tuple(upload),
        unchanged=tuple(unchanged),
        manifest_changed=not _unchanged(manifest, listed.get(MANIFEST_NAME)),
        delete=doomed,
    )


def _more(items: Sequence[str], shown: int = 3) -> str:
    extra = f" (+{len(items) - shown} more)" if len(items) > shown else ""
    return ", ".join(items[:shown]) + extra


def plan_pull(
    entries: Sequence[ManifestEntry],
    remote: Iterable[StoredObject],
    local: Mapping[str, str],
) -> PullPlan:
    """Plan a pull of the files ``entries`` name, given the store's and the folder's state.

    ``local`` maps each ``*.pcm`` already in the target folder to its sha256. A file's
    expected sha256 is the manifest's; legacy manifests have none, so the object's metadata
    (written at push) stands in. Raises :class:`StorageError` when a name is unsafe, the
    store lacks a file the manifest names, or no sha256 is known to verify a file against.
    """
    listed = {obj.name: obj for obj in remote}
    download: list[PullItem] = []
    present: list[str] = []
    missing: list[str] = []
    unverifiable: list[str] = []
    seen: set[str] = set()
    for entry in entries:
        name = check_name(entry.filename)
        if name in seen:
            continue
        seen.add(name)
        obj = listed.get(name)
        if obj is None:
            missing.append(name)
            continue
        expected = entry.sha256 or obj.sha256
        if expected is None:
            unverifiable.append(name)
        elif local.get(name) == expected:
            present.append(name)
        else:
            download.append(PullItem(name, expected, obj.size))
    if missing:
        raise StorageError(
            f"the manifest names {len(missing)} file(s) missing from the store: "
            f"{_more(missing)} (push the cache again)"
        )
    if unverifiable:
        raise StorageError(
            f"no sha256 to verify {len(unverifiable)} file(s) against: {_more(unverifiable)} "
            "(neither the manifest nor the blob metadata has one; push with voice-loadtest)"
        )
    stray = tuple(sorted(name for name in local if name not in seen))
    return PullPlan(tuple(download), tuple(present), stray)


def verify_chunks(chunks: Iterable[bytes], expected_sha256: str, *, name: str) -> bytes:
    """All of ``chunks`` joined, if their sha256 is ``expected_sha256``.

    Raises :class:`StorageError` naming ``name`` on a mismatch; errors raised by ``chunks``
    (an interrupted download) pass through unchanged.
    """
    digest = hashlib.sha256()
    parts = []
    for chunk in chunks:
        digest.update(chunk)
        parts.append(chunk)
    actual = digest.hexdigest()
    if actual != expected_sha256:
        raise StorageError(
            f"{name}: sha256 mismatch (expected {expected_sha256[:12]}…, got {actual[:12]}…): "
            "the stored object changed after push or is corrupt; push the cache again"
        )
    return b"".join(parts)


_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey|sig|se|sv|sp|st|spr|srt|ss|sr|skoid"
    r"|sktid|skt|ske|sks|skv|token|code|password)=[^;&\s'\"]*"
)
_URL_QUERY = re.compile(r"(?i)(\bhttps?://[^\s?#'\"]*)[?#][^\s'\"]*")


def redact(text: str) -> str:
    """``text`` with URL query strings and key/SAS assignments replaced by ``***``."""
    text = _URL_QUERY.sub(r"\1?***", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}=***", text)


def safe_url(url: str) -> str:
    """``url`` without user info, query string or fragment (where a SAS token would be)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<invalid url>"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
