"""The audio cache manifest (``manifest.jsonl``): one JSON object per PCM file.

Pure parsing and serialising; reading and writing the folder is :mod:`loadtest.audio.cache`.

Two formats are read:

* **current** — written by ``voice-loadtest generate-audio``; carries the exact speech
  boundaries (``speech_start_ms``, ``speech_end_ms``) and the ``sha256`` of the bytes.
* **legacy** — written by the earlier Azure-sample generator (``label``, ``path``, ``rate`` as
  ``"+0%"``; its ``turn_count`` holds the turn index). It has no boundaries and no sha256:
  boundaries are computed on load.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from loadtest.audio.pcm import SUPPORTED_RATES
from loadtest.errors import ManifestError

__all__ = [
    "MANIFEST_NAME",
    "REQUIRED_FIELDS",
    "ManifestEntry",
    "cache_filename",
    "content_hash",
    "parse_line",
    "parse_manifest",
    "sha256_hex",
    "to_line",
]

MANIFEST_NAME = "manifest.jsonl"

REQUIRED_FIELDS = (
    "filename",
    "text",
    "voice",
    "engine",
    "sample_rate",
    "channels",
    "sample_width",
    "duration_seconds",
    "speech_start_ms",
    "speech_end_ms",
    "scenario",
    "turn_index",
    "turn_count",
    "hash",
    "sha256",
    "created_at",
)
"""Fields every current-format line has."""

_LEGACY_FIELDS = ("filename", "text", "sample_rate", "scenario", "turn_index")
_LEGACY_RATE = re.compile(r"^([+-]?\d+(?:\.\d+)?)%$")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One cached utterance.

    ``turn_index`` counts from 1; ``turn_count`` is the scenario's number of turns (0 when
    unknown, as in legacy caches). ``speech_start_ms``/``speech_end_ms`` are on the 20 ms grid
    and ``None`` only while a legacy entry still waits for its boundaries. ``sha256`` is of the
    PCM bytes (``None`` for legacy entries); ``hash`` identifies text+voice+engine+rate.
    """

    filename: str
    text: str
    voice: str
    engine: str
    sample_rate: int
    duration_seconds: float
    speech_start_ms: int | None
    speech_end_ms: int | None
    scenario: str
    turn_index: int
    turn_count: int
    hash: str
    sha256: str | None
    created_at: str
    channels: int = 1
    sample_width: int = 2
    rate: float = 1.0
    style: str | None = None
    legacy: bool = False

    def with_bounds(self, start_ms: int, end_ms: int) -> ManifestEntry:
        """A copy with speech boundaries filled in."""
        return replace(self, speech_start_ms=start_ms, speech_end_ms=end_ms)


def content_hash(text: str, voice: str, engine: str, rate: float, style: str | None) -> str:
    """Short identity of an utterance: what would make the TTS produce different audio."""
    key = json.dumps([text, voice, engine, round(rate, 4), style or ""], ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def cache_filename(scenario: str, turn_index: int, turn_count: int, digest: str) -> str:
    """``{scenario}_turn_{i}_of_{n}_{hash}.pcm``."""
    return f"{scenario}_turn_{turn_index}_of_{turn_count}_{digest}.pcm"


def to_line(entry: ManifestEntry) -> str:
    """Serialise ``entry`` as one current-format JSON line (no trailing newline)."""
    record = asdict(entry)
    del record["legacy"]
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


def _field(record: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = record.get(name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"{where}: field '{name}' must be {kind.__name__}, got {value!r}")
    return value


def _legacy_rate(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _LEGACY_RATE.match(str(value or "+0%").strip())
    return 1.0 + float(match.group(1)) / 100.0 if match else 1.0


def _check_rate(rate: int, where: str) -> int:
    if rate not in SUPPORTED_RATES:
        raise ManifestError(f"{where}: sample_rate {rate} is not one of {SUPPORTED_RATES}")
    return rate


def parse_line(line: str, *, where: str) -> ManifestEntry:
    """Parse one manifest line (current or legacy format).

    ``where`` (e.g. ``"audio_cache/manifest.jsonl:3"``) prefixes every error message.
    Raises :class:`ManifestError` for invalid JSON or missing/mistyped fields.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "speech_end_ms" in record or "sha256" in record or "engine" in record:
        missing = [name for name in REQUIRED_FIELDS if name not in record]
        if missing:
            raise ManifestError(f"{where}: missing required field(s) {', '.join(missing)}")
        start = _field(record, "speech_start_ms", int, where)
        end = _field(record, "speech_end_ms", int, where)
        if not 0 <= start < end:
            raise ManifestError(f"{where}: speech_start_ms {start} / speech_end_ms {end} invalid")
        return ManifestEntry(
            filename=_field(record, "filename", str, where),
            text=_field(record, "text", str, where),
            voice=_field(record, "voice", str, where),
            engine=_field(record, "engine", str, where),
            sample_rate=_check_rate(_field(record, "sample_rate", int, where), where),
            channels=_field(record, "channels", int, where),
            sample_width=_field(record, "sample_width", int, where),
            duration_seconds=_field(record, "duration_seconds", float, where),
            speech_start_ms=start,
            speech_end_ms=end,
            scenario=_field(record, "scenario", str, where),
            turn_index=_field(record, "turn_index", int, where),
            turn_count=_field(record, "turn_count", int, where),
            hash=_field(record, "hash", str, where),
            sha256=_field(record, "sha256", str, where),
            created_at=_field(record, "created_at", str, where),
            rate=float(record.get("rate", 1.0)),
            style=record.get("style"),
        )
    missing = [name for name in _LEGACY_FIELDS if name not in record]
    if missing:
        raise ManifestError(f"{where}: missing required field(s) {', '.join(missing)}")
    # Legacy: turn_count holds the turn index, so the scenario length is unknown here (0).
    return ManifestEntry(
        filename=_field(record, "filename", str, where),
        text=_field(record, "text", str, where),
        voice=str(record.get("voice") or "unknown"),
        engine="azure",
        sample_rate=_check_rate(_field(record, "sample_rate", int, where), where),
        duration_seconds=float(record.get("duration_seconds") or 0.0),
        speech_start_ms=None,
        speech_end_ms=None,
        scenario=_field(record, "scenario", str, where),
        turn_index=_field(record, "turn_index", int, where),
        turn_count=0,
        hash=str(record.get("hash") or ""),
        sha256=None,
        created_at=str(record.get("created_at") or ""),
        rate=_legacy_rate(record.get("rate")),
        style=record.get("style"),
        legacy=True,
    )


def parse_manifest(text: str, *, source: str) -> list[ManifestEntry]:
    """Parse a whole manifest; blank lines are skipped. ``source`` names the file."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            entries.append(parse_line(line, where=f"{source}:{number}"))
    return entries
