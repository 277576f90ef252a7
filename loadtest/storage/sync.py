"""Push a local audio cache to an :class:`AudioStore` and pull it back, verified (edge).

**Push** — inspect the local cache and refuse one with problems; list the store;
:func:`~loadtest.storage.base.plan_push`; upload the changed PCM files in parallel; only when
all of them succeeded, upload the manifest; then prune (``delete``). A reader that fetches
the manifest first therefore never sees one naming a file that is not uploaded yet.

**Pull** — read the manifest into memory; list the store (after the manifest, so every file
it names is listed); hash the local ``*.pcm``; :func:`~loadtest.storage.base.plan_pull`;
download in parallel. Each file is hashed as it streams in and written only once its sha256
matches, with :func:`~loadtest.audio.cache.write_bytes_atomic` (temp name in the target folder,
then rename): an interrupted or tampered download leaves no file at all. Clips are seconds
of PCM (~32 kB/s at 16 kHz), so holding one per worker thread in memory is cheap. The
manifest is written last, and only when every file succeeded.

Progress is reported through a :class:`Progress`, always from the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from loadtest.audio.cache import inspect_cache, write_bytes_atomic
from loadtest.audio.manifest import MANIFEST_NAME, parse_manifest, sha256_hex
from loadtest.errors import (
    AudioError,
    ConfigError,
    LoadtestError,
    StorageError,
    StorageUnreachable,
)
from loadtest.storage.base import (
    AudioStore,
    LocalFile,
    ObjectNotFound,
    PullPlan,
    PushPlan,
    StoredObject,
    plan_pull,
    plan_push,
    verify_chunks,
)

__all__ = [
    "MAX_CONCURRENCY",
    "NO_PROGRESS",
    "Progress",
    "PullResult",
    "PushResult",
    "check_concurrency",
    "pull_cache",
    "push_cache",
]

MAX_CONCURRENCY = 64


class Progress(Protocol):
    """Receives transfer progress: ``start`` once with the file count, ``advance`` per file."""

    def start(self, total: int) -> None: ...

    def advance(self, name: str) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, name: str) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()


@dataclass(frozen=True, slots=True)
class PushResult:
    """What a push did (or, with ``dry_run``, would do)."""

    plan: PushPlan
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class PullResult:
    """What a pull did: the plan, whether the manifest changed, stray files removed."""

    plan: PullPlan
    manifest_written: bool
    removed: tuple[str, ...] = ()


def check_concurrency(value: int) -> int:
    """``value`` if it is a usable thread count, else :class:`ConfigError`."""
    if not 1 <= value <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency {value}: must be from 1 to {MAX_CONCURRENCY}")
    return value


def _run_parallel(
    names: Sequence[str], work: Callable[[str], None], concurrency: int, progress: Progress
) -> dict[str, LoadtestError]:
    """Run ``work`` for every name on a thread pool; the failures by name, in name order.

    A :class:`LoadtestError` is collected (the other files still complete); anything else
    (a bug, Ctrl-C) cancels what has not started and propagates.
    """
    progress.start(len(names))
    if not names:
        return {}
    failures: dict[str, LoadtestError] = {}
    pool = ThreadPoolExecutor(
        max_workers=check_concurrency(concurrency), thread_name_prefix="store"
    )
    try:
        futures: dict[Future[None], str] = {pool.submit(work, name): name for name in names}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                exc = future.exception()
                if exc is None:
                    progress.advance(futures[future])
                elif isinstance(exc, LoadtestError):
                    failures[futures[future]] = exc
                else:
                    raise exc
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return {name: failures[name] for name in sorted(failures)}


def _failed(action: str, failures: dict[str, LoadtestError], after: str) -> StorageError:
    """One line: which files failed, the first reason, and the state left behind."""
    names = list(failures)
    listed = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
    unreachable = any(isinstance(exc, StorageUnreachable) for exc in failures.values())
    return (StorageUnreachable if unreachable else StorageError)(
        f"{action}: {len(names)} file(s) failed ({listed}); first error: "
        f"{failures[names[0]]}; {after}"
    )


def _local_files(directory: Path) -> tuple[list[LocalFile], LocalFile]:
    report = inspect_cache(directory)
    if not directory.is_dir():
        raise AudioError(report.problems[0])
    if report.problems:
        more = len(report.problems) - 1
        extra = f" (+{more} more)" if more else ""
        raise AudioError(
            f"refusing to push {directory}: {report.problems[0]}{extra}; see "
            f"`voice-loadtest audio inspect {directory}`"
        )
    if report.format == "bare" or not report.clips:
        raise AudioError(
            f"refusing to push {directory}: no {MANIFEST_NAME} or no audio (run "
            f"`voice-loadtest generate-audio --out {directory}`)"
        )
    files = [LocalFile(c.entry.filename, len(c.pcm), sha256_hex(c.pcm)) for c in report.clips]
    try:
        data = (directory / MANIFEST_NAME).read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {directory / MANIFEST_NAME}: {exc.strerror}") from exc
    return files, LocalFile(MANIFEST_NAME, len(data), sha256_hex(data))


def push_cache(
    store: AudioStore,
    directory: Path,
    *,
    delete: bool = False,
    concurrency: int = 4,
    dry_run: bool = False,
    progress: Progress = NO_PROGRESS,
) -> PushResult:
    """Upload the cache in ``directory`` (PCM files, then the manifest) to ``store``.

    Unchanged files (same sha256 metadata and size) are skipped; with ``delete``, objects
    directly under the prefix that the manifest does not name are removed afterwards. Raises
    :class:`AudioError` for a local cache with problems and :class:`StorageError` when an
    upload fails (the manifest is then not uploaded).
    """
    check_concurrency(concurrency)
    files, manifest = _local_files(directory)
    plan = plan_push(files, manifest, store.list_objects(), delete=delete)
    if dry_run:
        return PushResult(plan, dry_run=True)
    hashes = {file.name: file.sha256 for file in files}

    def upload(name: str) -> None:
        store.put(name, directory / name, sha256=hashes[name])

    failures = _run_parallel(plan.upload, upload, concurrency, progress)
    if failures:
        raise _failed(f"push to {store.location}", failures, "the manifest was not uploaded")
    if plan.manifest_changed:
        store.put(MANIFEST_NAME, directory / MANIFEST_NAME, sha256=manifest.sha256)
    for name in plan.delete:
        store.delete(name)
    return PushResult(plan)


def _hash_local(directory: Path) -> dict[str, str]:
    try:
        return {
            path.name: sha256_hex(path.read_bytes())
            for path in sorted(directory.glob("*.pcm"))
            if path.is_file() and not path.name.startswith(".")
        }
    except OSError as exc:
        raise StorageError(f"cannot read {directory}: {exc.strerror or exc}") from exc


def _read_manifest(store: AudioStore) -> bytes:
    try:
        return b"".join(store.get(MANIFEST_NAME))
    except ObjectNotFound as exc:
        raise StorageError(
            f"no {MANIFEST_NAME} in {store.location} (push a cache there first)"
        ) from exc


def _check_manifest(data: bytes, listed: dict[str, StoredObject], location: str) -> None:
    obj = listed.get(MANIFEST_NAME)
    if obj is None or obj.sha256 is None:
        return
    if sha256_hex(data) != obj.sha256:
        raise StorageError(
            f"{location}{MANIFEST_NAME}: sha256 does not match its metadata (a push is running "
            "or the manifest is corrupt); pull again"
        )


def pull_cache(
    store: AudioStore,
    directory: Path,
    *,
    concurrency: int = 8,
    delete: bool = False,
    progress: Progress = NO_PROGRESS,
) -> PullResult:
    """Download the cache in ``store`` into ``directory`` (created if missing), verified.

    Files already present with the right sha256 are skipped. On any failure (sha256
    mismatch, interrupted download) raises one :class:`StorageError` naming the files; files
    that verified are kept, a failed file is never written, and the manifest is not updated.
    With ``delete``, local ``*.pcm`` files the manifest does not name are removed at the end.
    """
    check_concurrency(concurrency)
    manifest = _read_manifest(store)
    listed = {obj.name: obj for obj in store.list_objects()}
    _check_manifest(manifest, listed, store.location)
    entries = parse_manifest(
        manifest.decode("utf-8", errors="replace"), source=f"{store.location}{MANIFEST_NAME}"
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    plan = plan_pull(entries, listed.values(), _hash_local(directory))
    expected = {item.name: item.sha256 for item in plan.download}

    def download(name: str) -> None:
        data = verify_chunks(store.get(name), expected[name], name=name)
        write_bytes_atomic(directory / name, data)

    failures = _run_parallel([item.name for item in plan.download], download, concurrency, progress)
    if failures:
        raise _failed(
            f"pull from {store.location}",
            failures,
            f"verified files were kept, failed ones not written, {MANIFEST_NAME} not updated",
        )
    target = directory / MANIFEST_NAME
    written = not target.is_file() or target.read_bytes() != manifest
    if written:
        write_bytes_atomic(target, manifest)
    removed: tuple[str, ...] = ()
    if delete:
        for name in plan.stray:
            (directory / name).unlink(missing_ok=True)
        removed = plan.stray
    return PullResult(plan, written, removed)
