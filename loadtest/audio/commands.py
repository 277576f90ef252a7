"""CLI handlers for the audio commands: ``generate-audio`` and ``audio inspect`` (edge)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from loadtest.audio.cache import CacheReport, describe_cache, has_audio, inspect_cache
from loadtest.audio.generate import GenerateOptions, generate_audio
from loadtest.audio.pcm import SUPPORTED_RATES, duration_ms
from loadtest.audio.scenarios import load_scenarios, select_scenarios
from loadtest.audio.tts import make_engine, test_connection
from loadtest.errors import EXIT_INVALID, EXIT_PASS

__all__ = [
    "add_generate_arguments",
    "add_inspect_arguments",
    "default_audio_dir",
    "run_generate",
    "run_inspect",
]


def default_audio_dir() -> Path:
    """``PCM_DIR`` if set, else ``audio_cache/``."""
    return Path(os.environ.get("PCM_DIR") or "audio_cache")


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=[],
        metavar="NAME",
        help="scenarios to generate (default: all)",
    )
    parser.add_argument(
        "--scenarios-file",
        type=Path,
        metavar="YAML",
        help="extra scenarios (see docs/audio.md: scenario file format)",
    )
    parser.add_argument("--max-turns", type=int, metavar="N", help="first N turns per scenario")
    parser.add_argument(
        "--engine",
        choices=("espeak", "azure"),
        default="espeak",
        help="TTS engine (default: espeak, offline)",
    )
    parser.add_argument("--voice", help="voice for every turn (default: the engine's)")
    parser.add_argument("--rate", type=float, help="speaking-rate multiplier 0.5..2.0")
    parser.add_argument(
        "--sample-rate",
        type=int,
        choices=SUPPORTED_RATES,
        default=16000,
        help="PCM sample rate in Hz (default: 16000)",
    )
    parser.add_argument(
        "--lead-ms",
        type=int,
        default=200,
        help="silence before speech in each file, ms (default: 200)",
    )
    parser.add_argument(
        "--tail-ms",
        type=int,
        default=200,
        help="silence after speech in each file, ms (default: 200)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="cache folder (default: $PCM_DIR, else audio_cache/)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="regenerate even cached files, and replace another cache in --out (one made with "
        "another engine, voice or scenarios file), which is otherwise refused",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="with --force: also delete PCM files in --out that generate-audio did not write",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="generate only when --out holds no audio yet; otherwise name the cache there and "
        "write nothing (what the run targets of the Makefile use)",
    )
    parser.add_argument(
        "--test-connection",
        action="store_true",
        help="synthesise one short phrase with the engine and report, then exit",
    )
    parser.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    engine = make_engine(args.engine, os.environ)
    if args.test_connection:
        print(test_connection(engine))
        return 0
    out_dir = args.out or default_audio_dir()
    if args.if_missing and out_dir.is_dir() and has_audio(out_dir):
        print(f"audio: using {describe_cache(out_dir).line()} (left as it is)")
        return 0
    scenarios = select_scenarios(load_scenarios(args.scenarios_file), args.scenarios)
    options = GenerateOptions(
        out_dir=out_dir, sample_rate=args.sample_rate, max_turns=args.max_turns,
        voice=args.voice, rate=args.rate, force=args.force, prune=args.prune,
        lead_ms=args.lead_ms, tail_ms=args.tail_ms,
    )  # fmt: skip
    total = sum(min(len(s.turns), options.max_turns or len(s.turns)) for s in scenarios)
    with tqdm(
        total=total, unit="file", desc=f"generate ({engine.name})", file=sys.stderr, disable=None
    ) as bar:

        def progress(name: str, reused: bool) -> None:
            if reused:
                bar.write(f"reused    {name}", file=sys.stderr)
            else:
                bar.write(f"generated {name}", file=sys.stderr)
            bar.update(1)

        result = generate_audio(scenarios, engine, options, on_progress=progress)
    print(
        f"{len(result.generated)} generated, {len(result.reused)} reused; "
        f"manifest: {result.manifest}"
    )
    print(f"audio: {describe_cache(out_dir).line()}")
    return 0


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        type=Path,
        nargs="?",
        default=None,
        help="cache folder (default: $PCM_DIR, else audio_cache/)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--sample-rate",
        type=int,
        choices=SUPPORTED_RATES,
        help="flag files whose rate differs from this",
    )
    parser.set_defaults(handler=run_inspect)


def _rows(report: CacheReport) -> list[dict[str, object]]:
    return [
        {
            "file": c.entry.filename, "scenario": c.entry.scenario, "turn": c.entry.turn_index,
            "duration_s": round(duration_ms(c.pcm, c.entry.sample_rate) / 1000, 3),
            "sample_rate": c.entry.sample_rate, "speech_start_ms": c.speech_start_ms,
            "speech_end_ms": c.speech_end_ms, "sha256_ok": report.sha_ok.get(c.entry.filename),
        }
        for c in report.clips
    ]  # fmt: skip


def run_inspect(args: argparse.Namespace) -> int:
    directory = args.dir or default_audio_dir()
    report = inspect_cache(directory, expected_rate=args.sample_rate)
    rows = _rows(report)
    if args.json:
        print(
            json.dumps(
                {
                    "dir": str(directory),
                    "format": report.format,
                    "files": rows,
                    "problems": report.problems,
                    "warnings": report.warnings,
                },
                indent=2,
            )
        )
    else:
        print(f"{directory} ({report.format} format, {len(rows)} readable files)")
        header = f"{'scenario':<20} {'turn':>4} {'dur s':>6} {'speech ms':>13} {'sha256':>7}  file"
        print(header)
        for r in rows:
            sha = {True: "ok", False: "BAD", None: "-"}[r["sha256_ok"]]  # type: ignore[index]
            span = f"{r['speech_start_ms']}-{r['speech_end_ms']}"
            print(
                f"{r['scenario']!s:<20} {r['turn']!s:>4} {r['duration_s']!s:>6} {span:>13} "
                f"{sha:>7}  {r['file']}"
            )
        for warning in report.warnings:
            print(f"warning: {warning}")
        for problem in report.problems:
            print(f"problem: {problem}")
        print(f"{len(report.problems)} problem(s)")
    # A cache with problems is one a run refuses: the same code as that run (1 is a failed SLO).
    return EXIT_INVALID if report.problems else EXIT_PASS
