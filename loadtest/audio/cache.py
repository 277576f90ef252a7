"""The audio cache folder: PCM files plus ``manifest.jsonl`` (edge: reads and writes files).

:func:`inspect_cache` audits a folder and lists every problem without raising;
:func:`load_cache` returns the clips ready to stream, or raises one clear error. Both accept
the current manifest, the legacy Azure-sample manifest, and a bare folder of ``*.pcm`` files
(boundaries computed on load, with a warning). Speech boundaries belong to the recording:
they are decided once, on the cache's own audio at its own rate — stored by generate-audio, or
computed here when a legacy or bare cache has none — and every wire format maps those same
boundaries onto its frame grid; nothing re-detects speech after resampling. Writes are atomic
(temp file + rename), so a reader never sees a half-written file.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from loadtest.audio.manifest import (
    MANIFEST_NAME,
    ManifestEntry,
    parse_line,
    sha256_hex,
    to_line,
)
from loadtest.audio.pcm import check_pcm, duration_ms
from loadtest.audio.vad import DEFAULT_VAD, VadParams, speech_bounds
from loadtest.errors import AudioError, LoadtestError, StorageError

__all__ = [
    "AudioCache",
    "CacheIdentity",
    "CacheReport",
    "Clip",
    "describe_cache",
    "has_audio",
    "inspect_cache",
    "load_cache",
    "write_bytes_atomic",
    "write_manifest",
]

_NAME_PATTERN = re.compile(
    r"^(?P<scenario>.+?)[-_]turn[-_](?P<index>\d+)[-_]of[-_](?P<count>\d+)(?:_(?P<hash>\w+))?\.pcm$"
)


@dataclass(frozen=True, slots=True)
class Clip:
    """A cached utterance with its bytes; boundaries are always known here."""

    entry: ManifestEntry
    pcm: bytes

    @property
    def speech_start_ms(self) -> int:
        assert self.entry.speech_start_ms is not None
        return self.entry.speech_start_ms

    @property
    def speech_end_ms(self) -> int:
        assert self.entry.speech_end_ms is not None
        return self.entry.speech_end_ms


@dataclass(slots=True)
class CacheReport:
    """What :func:`inspect_cache` found: one clip per readable file, and every problem."""

    directory: Path
    format: str  # "current", "legacy" or "bare"
    clips: list[Clip] = field(default_factory=list)
    sha_ok: dict[str, bool | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CacheIdentity:
    """Which audio a cache holds: what a run states in its first lines and its summary.

    ``digest`` is ``sha256:<hex>`` over every file name with the sha256 of its bytes, in name
    order: the same audio under the same names has the same digest, whatever the manifests'
    timestamps or the folder's path.
    """

    directory: str
    engines: tuple[str, ...]
    voices: tuple[str, ...]
    files: int
    sample_rates: tuple[int, ...]
    digest: str

    def line(self) -> str:
        """One line for a person, e.g. ``audio_cache: espeak (en-us), 8 files, 16000 Hz, …``."""
        rates = "/".join(str(rate) for rate in self.sample_rates) or "?"
        return (
            f"{self.directory}: {', '.join(self.engines) or 'unknown engine'} "
            f"({', '.join(self.voices) or 'unknown voice'}), {self.files} files, {rates} Hz, "
            f"{self.digest[:19]}…"
        )

    def as_dict(self) -> dict[str, object]:
        """The summary's ``audio`` block."""
        return {
            "dir": self.directory,
            "engines": list(self.engines),
            "voices": list(self.voices),
            "files": self.files,
            "sample_rates": list(self.sample_rates),
            "digest": self.digest,
        }


def _identity(directory: Path, named: Iterable[tuple[ManifestEntry, str]]) -> CacheIdentity:
    """The identity of ``directory`` from its entries, each with the sha256 of its bytes."""
    pairs = list(named)
    lines = sorted(f"{entry.filename}\0{sha}\n" for entry, sha in pairs)
    return CacheIdentity(
        directory=str(directory),
        engines=tuple(sorted({entry.engine for entry, _ in pairs})),
        voices=tuple(sorted({entry.voice for entry, _ in pairs})),
        files=len(pairs),
        sample_rates=tuple(sorted({entry.sample_rate for entry, _ in pairs})),
        digest="sha256:" + sha256_hex("".join(lines).encode()),
    )


@dataclass(frozen=True, slots=True)
class AudioCache:
    """A verified cache: clips grouped by scenario, each list in turn order."""

    directory: Path
    sample_rate: int
    scenarios: dict[str, tuple[Clip, ...]]
    warnings: tuple[str, ...] = ()

    @property
    def identity(self) -> CacheIdentity:
        """Which audio this cache holds (see :class:`CacheIdentity`)."""
        clips = [clip for clips in self.scenarios.values() for clip in clips]
        return _identity(self.directory, ((clip.entry, sha256_hex(clip.pcm)) for clip in clips))


def has_audio(directory: Path) -> bool:
    """Whether ``directory`` holds a cache already: a manifest or any ``*.pcm`` file."""
    return (directory / MANIFEST_NAME).exists() or any(directory.glob("*.pcm"))


def describe_cache(directory: Path) -> CacheIdentity:
    """The identity of the cache in ``directory`` from its manifest (the bytes are read only
    where the manifest has no sha256), without verifying it; files it names that are missing
    are left out."""
    report = CacheReport(directory=directory, format="current")
    try:
        entries = _read_entries(directory, report, 16000)
        named = [
            (entry, entry.sha256 or sha256_hex((directory / entry.filename).read_bytes()))
            for entry in entries
            if (directory / entry.filename).is_file()
        ]
    except OSError as exc:
        raise StorageError(f"cannot read audio cache {directory}: {exc.strerror}") from exc
    return _identity(directory, named)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and an atomic rename."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_manifest(directory: Path, entries: Iterable[ManifestEntry]) -> Path:
    """Atomically (re)write ``directory/manifest.jsonl`` with ``entries`` in order."""
    path = directory / MANIFEST_NAME
    text = "".join(to_line(entry) + "\n" for entry in entries)
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def _bare_entry(path: Path, sample_rate: int, data: bytes) -> ManifestEntry:
    match = _NAME_PATTERN.match(path.name)
    scenario = match.group("scenario").replace("-", "_") if match else "default"
    index = int(match.group("index")) if match else 0
    return ManifestEntry(
        filename=path.name, text="", voice="unknown", engine="unknown",
        sample_rate=sample_rate, duration_seconds=round(duration_ms(data, sample_rate) / 1000, 3),
        speech_start_ms=None, speech_end_ms=None, scenario=scenario, turn_index=index,
        turn_count=0, hash=(match.group("hash") or "") if match else "", sha256=None,
        created_at=datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(), legacy=True,
    )  # fmt: skip


def _read_entries(directory: Path, report: CacheReport, bare_rate: int) -> list[ManifestEntry]:
    manifest = directory / MANIFEST_NAME
    if not manifest.exists():
        report.format = "bare"
        files = sorted(directory.glob("*.pcm"))
        if files:
            report.warnings.append(
                f"{directory}: no {MANIFEST_NAME}; assuming {bare_rate} Hz PCM16 and computing "
                f"speech boundaries once, at {bare_rate} Hz, on load (run generate-audio to "
                "write a manifest)"
            )
        entries = [_bare_entry(p, bare_rate, p.read_bytes()) for p in files]
        # Files without a turn number in their name play in file-name order.
        for order, entry in enumerate(entries, start=1):
            if entry.turn_index == 0:
                entries[order - 1] = replace(entry, turn_index=order)
        return entries
    entries = []
    text = manifest.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(parse_line(line, where=f"{manifest}:{number}"))
        except AudioError as exc:
            report.problems.append(str(exc))
    if entries and all(e.legacy for e in entries):
        report.format = "legacy"
    unbounded = [e for e in entries if e.speech_end_ms is None]
    if unbounded:
        rates = ", ".join(f"{r} Hz" for r in sorted({e.sample_rate for e in unbounded}))
        report.warnings.append(
            f"{manifest}: {len(unbounded)} file(s) without speech boundaries; computed once, "
            f"at the cache's rate ({rates}), on load and used for every wire format "
            "(regenerate with generate-audio to store them)"
        )
    return entries


def inspect_cache(
    directory: Path,
    *,
    expected_rate: int | None = None,
    bare_rate: int = 16000,
    vad: VadParams = DEFAULT_VAD,
) -> CacheReport:
    """Audit ``directory``: every problem is listed, nothing raises except an unreadable dir."""
    report = CacheReport(directory=directory, format="current")
    if not directory.is_dir():
        report.problems.append(
            f"{directory}: audio cache folder not found (run `voice-loadtest generate-audio "
            f"--out {directory}` or set PCM_DIR)"
        )
        return report
    try:
        entries = _read_entries(directory, report, bare_rate)
    except OSError as exc:
        raise StorageError(f"cannot read audio cache {directory}: {exc.strerror}") from exc
    named = set()
    for entry in entries:
        named.add(entry.filename)
        path = directory / entry.filename
        if not path.is_file():
            report.problems.append(f"{entry.filename}: named in the manifest but missing")
            continue
        data = path.read_bytes()
        where = entry.filename
        try:
            check_pcm(data, what=where)
            if expected_rate is not None and entry.sample_rate != expected_rate:
                raise AudioError(
                    f"{where}: sample rate {entry.sample_rate} Hz, expected {expected_rate} Hz "
                    "(regenerate with --sample-rate or change the caller's rate)"
                )
            if entry.speech_end_ms is None:
                bounds = speech_bounds(data, entry.sample_rate, vad, what=where)
                entry = entry.with_bounds(bounds.start_ms, bounds.end_ms)
            elif entry.speech_end_ms > duration_ms(data, entry.sample_rate) + vad.frame_ms:
                raise AudioError(f"{where}: speech_end_ms {entry.speech_end_ms} beyond the file")
        except LoadtestError as exc:
            report.problems.append(str(exc))
            continue
        ok = None if entry.sha256 is None else sha256_hex(data) == entry.sha256
        report.sha_ok[entry.filename] = ok
        if ok is False:
            report.problems.append(f"{where}: sha256 mismatch (file changed or corrupt)")
            continue
        report.clips.append(Clip(entry, data))
    if report.format != "bare":
        for path in sorted(directory.glob("*.pcm")):
            if path.name not in named:
                report.problems.append(f"{path.name}: file has no manifest line")
    return report


def load_cache(
    directory: Path, *, sample_rate: int | None = None, vad: VadParams = DEFAULT_VAD
) -> AudioCache:
    """Load and verify the cache in ``directory`` for streaming.

    Raises :class:`AudioError` with the first problem (and how many more) when the folder is
    missing, empty or any file is unusable.
    """
    report = inspect_cache(
        directory, expected_rate=sample_rate, bare_rate=sample_rate or 16000, vad=vad
    )
    if report.problems:
        more = len(report.problems) - 1
        extra = f" (+{more} more; see `voice-loadtest audio inspect {directory}`)" if more else ""
        raise AudioError(report.problems[0] + extra)
    if not report.clips:
        raise AudioError(
            f"{directory}: no audio in the cache (run `voice-loadtest generate-audio --out "
            f"{directory}`)"
        )
    rates = {clip.entry.sample_rate for clip in report.clips}
    if len(rates) > 1:
        raise AudioError(f"{directory}: mixed sample rates {sorted(rates)}; use one rate")
    scenarios: dict[str, list[Clip]] = {}
    for clip in report.clips:
        scenarios.setdefault(clip.entry.scenario, []).append(clip)
    ordered = {
        name: tuple(sorted(clips, key=lambda c: c.entry.turn_index))
        for name, clips in sorted(scenarios.items())
    }
    return AudioCache(directory, rates.pop(), ordered, tuple(report.warnings))
