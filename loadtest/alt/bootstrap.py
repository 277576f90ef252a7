"""Engine-side set-up of an exported ALT test (edge: files, environment, Locust events).

The exported ``locustfile.py`` calls :func:`prepare` once, at import, after
``register(events)`` — before Locust parses its options, so what this sets is what the
harness reads:

1. **Audio.** ``PCM_DIR`` (``./`` in the export) must name a folder holding
   ``manifest.jsonl`` and every file it lists. ALT copies test files into one folder and
   unzips ZIP artifacts without documenting where, and the engine's working directory is not
   documented either; so this finds the manifest (``PCM_DIR``, then the locustfile's folder,
   then its sub-folders), and if files are not beside it, assembles a folder from sub-folders
   and still-packed ``voice-audio-*.zip`` files (:func:`~loadtest.alt.audio_plan.plan_restore`)
   and points ``PCM_DIR`` there. Anything still missing is left for the harness to report as
   one clear error.
2. **Defaults.** ``--slo-file`` defaults to the shipped ``slo.yaml`` (so the engine's summary
   judges by the same SLOs as the ALT criteria) and ``--summary-json`` to
   ``voice-summary.json``; ALT passes no command-line flags of ours.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loadtest.alt.audio_plan import plan_restore
from loadtest.audio.manifest import MANIFEST_NAME, parse_line
from loadtest.errors import AudioError

__all__ = ["STAGING_DIR", "SUMMARY_NAME", "prepare", "resolve_audio"]

log = logging.getLogger("voice-loadtest")

STAGING_DIR = ".voice-audio"
SUMMARY_NAME = "voice-summary.json"
_SEARCH_DEPTH = 3


def _walk(root: Path, depth: int) -> Iterator[Path]:
    """Files under ``root`` down to ``depth`` folders, skipping the staging folder."""
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_dir():
            if depth > 0 and entry.name != STAGING_DIR:
                yield from _walk(entry, depth - 1)
        else:
            yield entry


def _find_manifest(here: Path) -> Path | None:
    configured = os.environ.get("PCM_DIR")
    for folder in ([Path(configured)] if configured else []) + [here]:
        if (folder / MANIFEST_NAME).is_file():
            return folder / MANIFEST_NAME
    return next((p for p in _walk(here, _SEARCH_DEPTH) if p.name == MANIFEST_NAME), None)


def _manifest_names(manifest: Path) -> list[str]:
    names = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                names.append(parse_line(line, where=f"{manifest}:{number}").filename)
            except AudioError:
                continue  # the harness reports a malformed manifest with its own message
    return names


def _staging(here: Path) -> Path:
    target = here / STAGING_DIR
    try:
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        return target
    except OSError:  # a read-only test folder: assemble in a temporary one
        return Path(tempfile.mkdtemp(prefix="voice-audio-"))


def _link(source: Path, target: Path) -> None:
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copyfile(source, target)


def resolve_audio(here: Path) -> tuple[Path | None, str]:
    """Point ``PCM_DIR`` at a folder with the manifest and all its files.

    Returns that folder and a one-line note when it had to be assembled (else ``""``).
    ``None`` (and ``PCM_DIR`` untouched) when no manifest exists anywhere: the harness then
    fails with its own "audio cache folder not found" line.
    """
    manifest = _find_manifest(here)
    if manifest is None:
        return None, ""
    names = _manifest_names(manifest)
    wanted = set(names)
    beside = {n: str(manifest.parent / n) for n in names if (manifest.parent / n).is_file()}
    if len(beside) == len(wanted):
        os.environ["PCM_DIR"] = str(manifest.parent)
        return manifest.parent, ""
    elsewhere = {p.name: str(p) for p in _walk(here, _SEARCH_DEPTH) if p.name in wanted}
    zipped: dict[str, str] = {}
    for archive in sorted(here.glob("*.zip")):
        try:
            with zipfile.ZipFile(archive) as handle:
                zipped.update({m: str(archive) for m in handle.namelist() if m in wanted})
        except (OSError, zipfile.BadZipFile):
            continue
    plan = plan_restore(names, beside, elsewhere, zipped)
    target = _staging(here)
    shutil.copyfile(manifest, target / MANIFEST_NAME)
    for name, path in plan.link:
        _link(Path(path), target / name)
    for name, archive_path in plan.extract:
        with zipfile.ZipFile(archive_path) as handle, handle.open(name) as src:
            (target / name).write_bytes(src.read())
    os.environ["PCM_DIR"] = str(target)
    note = (
        f"voice-loadtest: assembled the audio in {target} ({len(plan.link)} linked, "
        f"{len(plan.extract)} unzipped, {len(plan.missing)} missing)"
    )
    return target, note


def prepare(here: Path, events: Any) -> None:
    """Resolve the audio and set our option defaults; call after ``register(events)``."""
    _, note = resolve_audio(here)
    if note:  # logged once Locust has set up logging (it has not at import time)
        events.init.add_listener(lambda **_: log.info(note))
    slo = here / "slo.yaml"

    def _defaults(parser: Any, **_: Any) -> None:
        values = {"summary_json": SUMMARY_NAME}
        if slo.is_file():
            values["slo_file"] = str(slo)
        parser.set_defaults(**values)

    events.init_command_line_parser.add_listener(_defaults)
