"""Where the caller audio goes in an ALT test, and how an engine finds it again (core).

Two pure planners, one per side:

* :func:`plan_upload` (export) decides which PCM files are uploaded as plain
  ``configurationFiles`` and which go into ``zipArtifacts``. ALT takes plain files up to
  50 MB; past that — for any file, for the audio set as a whole, or when the files would
  exceed the per-test upload count — the audio goes into ZIPs of at most 50 MB and 1000
  files each, 5 ZIPs per test. The manifest always stays a plain file.
* :func:`plan_restore` (engine) decides how to make every file the manifest names appear in
  one folder. ALT copies all files into one folder and "automatically unzips" ZIP artifacts,
  but does not document where the content lands; so the engine links files it finds in
  sub-folders, extracts from ZIPs it finds still packed, and reports what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loadtest.alt.limits import AltLimits
from loadtest.errors import AudioError

__all__ = [
    "AudioFile",
    "RestorePlan",
    "UploadPlan",
    "plan_restore",
    "plan_upload",
    "zip_name",
]

_MB = 1024 * 1024


def zip_name(index: int) -> str:
    """Name of the ``index``-th (1-based) audio ZIP artifact."""
    return f"voice-audio-{index}.zip"


@dataclass(frozen=True, slots=True)
class AudioFile:
    """A file of the audio set: flat ``name`` and size in bytes."""

    name: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """``loose`` files go to ``configurationFiles``; ``zips`` lists each ZIP's members.

    ``reason`` says why the audio is zipped (empty when it is not).
    """

    loose: tuple[str, ...]
    zips: tuple[tuple[str, ...], ...]
    reason: str = ""


_ZIP_END_BYTES = 22  # end-of-central-directory record


def _zipped_bytes(audio: AudioFile) -> int:
    """Upper bound of ``audio``'s share of a ZIP: the data, deflate's worst case on
    incompressible input (5 bytes per stored block; 16 KiB assumed, real blocks are larger)
    and the local and central headers (30 + 46 bytes plus the name twice, extras rounded up).
    """
    blocks = -(-audio.size_bytes // 16384) + 1
    return audio.size_bytes + 5 * blocks + 128 + 2 * len(audio.name.encode("utf-8"))


def _zip_reason(files: Sequence[AudioFile], other_files: int, limits: AltLimits) -> str:
    limit_mb = limits.max_file_bytes / _MB
    biggest = max(files, key=lambda f: f.size_bytes)
    total = sum(f.size_bytes for f in files)
    if biggest.size_bytes > limits.max_file_bytes:
        return f"{biggest.name} is {biggest.size_bytes / _MB:.1f} MB (> {limit_mb:g} MB per file)"
    if total > limits.max_file_bytes:
        return f"the audio totals {total / _MB:.1f} MB (> {limit_mb:g} MB)"
    if other_files + len(files) > limits.max_files_per_test:
        return (
            f"{len(files)} audio files plus {other_files} others exceed "
            f"{limits.max_files_per_test} files per test"
        )
    return ""


def plan_upload(files: Sequence[AudioFile], *, other_files: int, limits: AltLimits) -> UploadPlan:
    """Plan the upload of ``files`` (PCM only) next to ``other_files`` plain files.

    ZIPs are packed greedily in the given order, bounded by the worst-case ZIP size of their
    members (:func:`_zipped_bytes`: even incompressible audio stays under the per-file limit)
    and by files per ZIP; a single file above the bound gets a ZIP of its own (the exporter
    then checks its real size). Raises :class:`AudioError` when more ZIPs than ALT allows
    would be needed.
    """
    if not files:
        return UploadPlan((), ())
    reason = _zip_reason(files, other_files, limits)
    if not reason:
        return UploadPlan(tuple(f.name for f in files), ())
    budget = limits.max_file_bytes - _ZIP_END_BYTES
    zips: list[list[str]] = []
    size = raw = 0
    for audio in files:
        cost = _zipped_bytes(audio)
        if (
            not zips
            or len(zips[-1]) >= limits.max_files_per_zip
            or (zips[-1] and size + cost > budget)
            or (zips[-1] and raw + audio.size_bytes > limits.max_zip_uncompressed_bytes)
        ):
            zips.append([])
            size = raw = 0
        zips[-1].append(audio.name)
        size += cost
        raw += audio.size_bytes
    if len(zips) > limits.max_zip_artifacts:
        total = sum(f.size_bytes for f in files) / _MB
        raise AudioError(
            f"the audio set ({len(files)} files, {total:.1f} MB) needs {len(zips)} ZIP artifacts "
            f"but Azure Load Testing allows {limits.max_zip_artifacts} of at most "
            f"{limits.max_file_bytes / _MB:g} MB: use fewer or shorter clips"
        )
    if other_files + len(zips) > limits.max_files_per_test:
        raise AudioError(f"the test would upload more than {limits.max_files_per_test} files")
    return UploadPlan((), tuple(tuple(z) for z in zips), reason)


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """How to assemble the audio folder on an engine.

    ``link``: (name, path) of files on disk (beside the manifest or in a sub-folder), to link
    into the assembled folder; ``extract``: (name, zip path) of files still inside a ZIP;
    ``missing``: names found nowhere. All empty when nothing needs assembling.
    """

    link: tuple[tuple[str, str], ...]
    extract: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]

    @property
    def needed(self) -> bool:
        """True when the manifest's folder does not already hold every file."""
        return bool(self.link or self.extract)


def plan_restore(
    names: Sequence[str],
    beside: Mapping[str, str],
    elsewhere: Mapping[str, str],
    zipped: Mapping[str, str],
) -> RestorePlan:
    """Plan where each manifest file ``name`` comes from.

    ``beside``: name → path of files next to the manifest; ``elsewhere``: name → path found in
    a sub-folder (e.g. where ALT unzipped); ``zipped``: name → ZIP still holding it. A file
    beside the manifest wins, then an unpacked copy, then the ZIP.
    """
    link, extract, missing = [], [], []
    if all(name in beside for name in names):
        return RestorePlan((), (), ())
    for name in names:
        if name in beside:
            link.append((name, beside[name]))
        elif name in elsewhere:
            link.append((name, elsewhere[name]))
        elif name in zipped:
            extract.append((name, zipped[name]))
        else:
            missing.append(name)
    return RestorePlan(tuple(link), tuple(extract), tuple(missing))
