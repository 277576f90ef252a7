"""``generate-audio``: synthesise every scenario turn once into the audio cache.

For each turn: synthesise (any :class:`~loadtest.audio.tts.TtsEngine`), find the speech with
the shared VAD, cut or pad the silence around it to a fixed margin on the frame grid, write
the PCM atomically and record its exact speech boundaries in the manifest. A turn whose file
is already in the manifest with the same content hash and intact bytes is reused. The
manifest is rewritten (atomically) after each new file, and only ever names files that exist.

A cache is the user's data. A folder that holds another cache — one whose manifest names
another engine, another voice or other words for a turn this generation writes, or PCM files
this tool did not write (no manifest line, or the legacy format) — is left alone unless
``force``; files this tool did not write are deleted only with ``prune``. The tool's own
files of a regenerated scenario that no longer belong to it (fewer turns) are removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from loadtest.audio.cache import write_bytes_atomic, write_manifest
from loadtest.audio.manifest import (
    MANIFEST_NAME,
    ManifestEntry,
    cache_filename,
    content_hash,
    parse_manifest,
    sha256_hex,
)
from loadtest.audio.pcm import SAMPLE_WIDTH, check_pcm, check_rate, duration_ms, silence
from loadtest.audio.scenarios import Scenario
from loadtest.audio.tts import TtsEngine
from loadtest.audio.vad import DEFAULT_VAD, VadParams, speech_bounds
from loadtest.errors import AudioError, ConfigError, StorageError

__all__ = ["GenerateOptions", "GenerateResult", "frame_margin", "generate_audio"]


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """How to generate. ``voice``/``rate`` override every turn's own when set."""

    out_dir: Path
    sample_rate: int = 16000
    max_turns: int | None = None
    voice: str | None = None
    rate: float | None = None
    force: bool = False
    prune: bool = False
    lead_ms: int = 200
    tail_ms: int = 200
    vad: VadParams = DEFAULT_VAD

    def __post_init__(self) -> None:
        check_rate(self.sample_rate)
        if self.max_turns is not None and self.max_turns < 1:
            raise ConfigError(f"--max-turns {self.max_turns}: must be >= 1")
        if self.rate is not None and not 0.5 <= self.rate <= 2.0:
            raise ConfigError(f"--rate {self.rate}: must be from 0.5 to 2.0")
        for name, value in (("lead", self.lead_ms), ("tail", self.tail_ms)):
            if value < 0 or value % self.vad.frame_ms:
                raise ConfigError(
                    f"{name} margin {value} ms must be >= 0 and a multiple of "
                    f"{self.vad.frame_ms} ms"
                )


@dataclass(slots=True)
class GenerateResult:
    """Files written and files reused, by file name, plus the manifest path."""

    manifest: Path
    generated: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


def frame_margin(
    pcm: bytes, sample_rate: int, start_ms: int, end_ms: int, lead_ms: int, tail_ms: int
) -> bytes:
    """Cut or pad ``pcm`` so exactly ``lead_ms`` precede speech and ``tail_ms`` follow it.

    Original samples are kept where they exist (so quiet onsets are not clipped); digital
    silence pads where the file is too short. All values are on the frame grid.
    """
    per_ms = sample_rate * SAMPLE_WIDTH // 1000
    first = (start_ms - lead_ms) * per_ms
    last = (end_ms + tail_ms) * per_ms
    head = silence(-first) if first < 0 else b""
    body = pcm[max(first, 0) : last]
    return head + body + silence(max(0, last - max(first, 0) - len(body)))


@dataclass(frozen=True, slots=True)
class _Planned:
    """One turn this generation writes."""

    scenario: str
    index: int
    count: int
    text: str
    voice: str
    rate: float
    style: str | None
    digest: str  # content_hash: what would make the engine produce other audio
    filename: str


def _plan(
    scenarios: Sequence[Scenario], engine: TtsEngine, options: GenerateOptions
) -> list[_Planned]:
    planned = []
    for scenario in scenarios:
        turns = scenario.turns[: options.max_turns] if options.max_turns else scenario.turns
        for index, turn in enumerate(turns, start=1):
            voice = options.voice or turn.voice or engine.default_voice
            rate = options.rate or turn.rate or 1.0
            digest = content_hash(turn.text, voice, engine.name, rate, turn.style)
            filename = cache_filename(scenario.name, index, len(turns), digest)
            turn_plan = _Planned(
                scenario=scenario.name, index=index, count=len(turns), text=turn.text,
                voice=voice, rate=rate, style=turn.style, digest=digest, filename=filename,
            )  # fmt: skip
            planned.append(turn_plan)
    return planned


def _existing(out_dir: Path) -> tuple[dict[str, ManifestEntry], list[str]]:
    """The files this tool wrote (current-format manifest lines whose file exists), and the
    PCM files it did not write (legacy lines, no line at all, or an unreadable manifest)."""
    path = out_dir / MANIFEST_NAME
    entries: list[ManifestEntry] = []
    if path.exists():
        try:
            entries = parse_manifest(path.read_text(encoding="utf-8"), source=str(path))
        except AudioError:
            entries = []  # unreadable: nothing in the folder can be told to be ours
    ours = {e.filename: e for e in entries if not e.legacy and (out_dir / e.filename).is_file()}
    others = sorted(p.name for p in out_dir.glob("*.pcm") if p.name not in ours)
    return ours, others


def _foreign(
    ours: dict[str, ManifestEntry], planned: Sequence[_Planned], engine: str
) -> str | None:
    """Why the cache ``ours`` is another cache than this generation's (``None``: it is not)."""
    engines = sorted({entry.engine for entry in ours.values()} - {engine})
    if engines:
        return f"made with {', '.join(engines)}, not {engine}"
    turns = {(turn.scenario, turn.index): turn for turn in planned}
    for entry in ours.values():
        turn = turns.get((entry.scenario, entry.turn_index))
        if turn is not None and entry.voice != turn.voice:
            return f"{entry.filename} has voice {entry.voice}, not {turn.voice}"
        if turn is not None and entry.text != turn.text:
            return f"{entry.filename} says other words (made from another scenarios file)"
    return None


def _check_folder(
    out_dir: Path,
    ours: dict[str, ManifestEntry],
    others: Sequence[str],
    planned: Sequence[_Planned],
    engine: str,
    options: GenerateOptions,
) -> None:
    """Refuse (one line) to write into another cache unless told to."""
    keep = "choose another --out"
    if others and not (options.force and options.prune):
        what = f"{len(others)} PCM file(s) generate-audio did not write (e.g. {others[0]})"
        raise ConfigError(f"{out_dir} holds {what}; {keep}, or --force --prune to replace them")
    reason = _foreign(ours, planned, engine)
    if reason is not None and not options.force:
        raise ConfigError(
            f"{out_dir} holds another audio cache ({reason}); {keep}, or --force to replace it"
        )


def _reusable(entry: ManifestEntry | None, out_dir: Path, sample_rate: int) -> bool:
    if entry is None or entry.sample_rate != sample_rate:
        return False
    return sha256_hex((out_dir / entry.filename).read_bytes()) == entry.sha256


def generate_audio(
    scenarios: Sequence[Scenario],
    engine: TtsEngine,
    options: GenerateOptions,
    *,
    on_progress: Callable[[str, bool], None] = lambda name, reused: None,
) -> GenerateResult:
    """Generate the audio of ``scenarios`` into ``options.out_dir`` with ``engine``.

    ``on_progress(filename, reused)`` is called once per turn. Entries of other scenarios
    already in the manifest are kept. Raises AudioError (e.g. no speech in the synthesised
    audio), TtsError or StorageError; files written before the error stay valid and listed.
    """
    out_dir = options.out_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create output folder {out_dir}: {exc.strerror}") from exc
    known, others = _existing(out_dir)
    planned = _plan(scenarios, engine, options)
    _check_folder(out_dir, known, others, planned, engine.name, options)
    result = GenerateResult(manifest=out_dir / MANIFEST_NAME)
    manifest: dict[str, ManifestEntry] = {
        name: e for name, e in known.items() if e.scenario not in {s.name for s in scenarios}
    }
    for turn in planned:
        entry = known.get(turn.filename)
        if not options.force and _reusable(entry, out_dir, options.sample_rate):
            assert entry is not None
            manifest[turn.filename] = entry
            result.reused.append(turn.filename)
            on_progress(turn.filename, True)
            continue
        manifest[turn.filename] = _synthesize(turn, engine, options)
        write_manifest(out_dir, _ordered(manifest))
        result.generated.append(turn.filename)
        on_progress(turn.filename, False)
    write_manifest(out_dir, _ordered(manifest))
    # Files this tool wrote earlier for the regenerated scenarios and no longer listed
    # (fewer turns, other voice) would otherwise show up as orphans in `audio inspect`; with
    # prune, so would the files it did not write.
    for stale in [*(set(known) - set(manifest)), *(others if options.prune else ())]:
        (out_dir / stale).unlink(missing_ok=True)
    return result


def _synthesize(turn: _Planned, engine: TtsEngine, options: GenerateOptions) -> ManifestEntry:
    """Synthesise ``turn``, frame its speech, write its PCM; its manifest entry."""
    raw = check_pcm(
        engine.synthesize(
            turn.text, voice=turn.voice, rate=turn.rate, style=turn.style,
            sample_rate=options.sample_rate,
        ),
        what=f"{engine.name} output for {turn.scenario} turn {turn.index}",
    )  # fmt: skip
    where = f"{turn.scenario} turn {turn.index} ({turn.text[:40]!r})"
    found = speech_bounds(raw, options.sample_rate, options.vad, what=where)
    pcm = frame_margin(
        raw, options.sample_rate, found.start_ms, found.end_ms, options.lead_ms, options.tail_ms
    )
    bounds = speech_bounds(pcm, options.sample_rate, options.vad, what=where)
    write_bytes_atomic(options.out_dir / turn.filename, pcm)
    return ManifestEntry(
        filename=turn.filename, text=turn.text, voice=turn.voice, engine=engine.name,
        sample_rate=options.sample_rate,
        duration_seconds=round(duration_ms(pcm, options.sample_rate) / 1000.0, 3),
        speech_start_ms=bounds.start_ms, speech_end_ms=bounds.end_ms,
        scenario=turn.scenario, turn_index=turn.index, turn_count=turn.count,
        hash=turn.digest, sha256=sha256_hex(pcm),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        rate=turn.rate, style=turn.style,
    )  # fmt: skip


def _ordered(manifest: dict[str, ManifestEntry]) -> list[ManifestEntry]:
    return sorted(manifest.values(), key=lambda e: (e.scenario, e.turn_index, e.filename))
