"""``voice-loadtest alt …``: Azure Load Testing commands (edge: argparse and printing).

Wire it into the main CLI with ``add_alt_arguments(subparsers)``; each action sets
``handler``. Errors are :class:`~loadtest.errors.LoadtestError` (one line, printed by the
caller); warnings go to stderr as ``voice-loadtest: warning: …``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from loadtest.alt.config import AutoStop, ExportRequest
from loadtest.alt.export import export_test
from loadtest.settings import SETTINGS

__all__ = ["add_alt_actions", "add_alt_arguments", "run_export"]

_NOT_PASSED_THROUGH = ("WS_URL", "PCM_DIR")


def add_alt_arguments(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``alt`` (with its actions) to the main CLI's ``subparsers``; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "alt",
        help="Azure Load Testing: export a ready-to-upload Locust test",
        description="Azure Load Testing (ALT) support. See docs/azure-load-testing.md.",
    )
    add_alt_actions(parser)
    return parser


def add_alt_actions(parser: argparse.ArgumentParser) -> None:
    """The ``alt`` actions (``export``) on ``parser``."""
    actions = parser.add_subparsers(dest="alt_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write a folder ALT accepts as is: locustfile, audio, alt-config.yaml",
        description=(
            "Write an Azure Load Testing test folder: locustfile.py with the harness, the "
            "audio, requirements.txt and alt-config.yaml with fail criteria from the SLOs. "
            "Users and spawn rate are totals over all engines."
        ),
    )
    _add_export_arguments(export)
    export.set_defaults(handler=run_export)


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--out", type=Path, required=True, help="folder to write (created)")
    add("--test-id", default="voice-agent-load", help="ALT test ID: 2-50 of a-z 0-9 _ -")
    add("--display-name", default="", help="name shown in the portal (2-50 characters)")
    add("--description", default="Voice agent load test (voice-loadtest)", help="<= 100 chars")
    add("--engines", type=int, default=1, help="ALT engine instances (1-400)")
    add("--users", "-u", type=int, default=50, help="concurrent callers, total over engines")
    add("--spawn-rate", "-r", type=float, default=5.0, help="callers started per second, total")
    add("--duration", "-t", default="10m", help="run time, e.g. 90s, 10m, 1h30m (max 24h)")
    add("--ws-url", default=os.environ.get("WS_URL", ""), help="agent URL, wss:// [$WS_URL]")
    add("--pcm-dir", type=Path, default=Path(os.environ.get("PCM_DIR") or "audio_cache"),
        help="local audio cache to ship [$PCM_DIR, default audio_cache]")  # fmt: skip
    add("--slo", type=Path, help="SLO YAML (default: the built-in targets)")
    add("--key-vault-secret", action="append", default=[], metavar="NAME=URI",
        help="engine env var NAME from a Key Vault secret identifier (repeatable)")  # fmt: skip
    add("--key-vault-identity", default="", metavar="RESOURCE_ID",
        help="user-assigned identity that reads the secrets (default: system)")  # fmt: skip
    add("--autostop-error-percentage", type=float, default=90.0,
        help="stop the run when errors exceed this %% over the window (default 90)")  # fmt: skip
    add("--autostop-time-window", type=int, default=60, help="auto-stop window in seconds")
    add("--no-autostop", action="store_true", help="never stop automatically (costs money)")
    add("--allow-insecure-url", action="store_true", help="accept ws:// (test endpoints only)")
    add("--force", action="store_true", help="replace a previous export in --out")
    group = parser.add_argument_group("caller settings passed to the engines as env values")
    for knob in SETTINGS.values():
        if knob.env not in _NOT_PASSED_THROUGH and not knob.secret:
            group.add_argument(knob.option, dest=f"knob_{knob.env}", metavar=knob.env,
                               help=f"{knob.help} [default {knob.default!r}]")  # fmt: skip


def _warn(message: str) -> None:
    print(f"voice-loadtest: warning: {message}", file=sys.stderr)


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``alt export``: export, then print what was written and what to run next."""
    knobs = {
        knob.env: str(value)
        for knob in SETTINGS.values()
        if (value := getattr(args, f"knob_{knob.env}", None)) is not None
    }
    request = ExportRequest(
        ws_url=args.ws_url, test_id=args.test_id, display_name=args.display_name,
        description=args.description, engines=args.engines, users=args.users,
        spawn_rate=args.spawn_rate, duration=args.duration, knobs=knobs,
        secrets=tuple(args.key_vault_secret), key_vault_identity=args.key_vault_identity,
        autostop=None if args.no_autostop else AutoStop(args.autostop_error_percentage,
                                                        args.autostop_time_window),
        allow_insecure_url=args.allow_insecure_url,
    )  # fmt: skip
    result = export_test(request, args.out, pcm_dir=args.pcm_dir, slo_file=args.slo,
                         force=args.force)  # fmt: skip
    for warning in result.warnings:
        _warn(warning)
    options = result.options
    print(f"exported ALT test {options.test_id!r} to {result.out_dir}")
    print(
        f"  {options.engines} engine(s), {options.users} callers total "
        f"(~{options.users_per_engine} per engine), spawn {options.spawn_rate:g}/s, "
        f"{options.duration_s} s, target {options.ws_url}"
    )
    audio = f"{len(result.zips)} ZIP artifact(s) ({result.zip_reason})" if result.zips else "plain"
    print(f"  {len(result.files) + len(result.zips) + 1} files to upload; audio {audio}")
    print("  fail criteria:")
    for criterion in result.criteria.criteria:
        print(f"    {criterion}    (from {criterion.source})")
    for note in result.criteria.unmapped:
        print(f"  note: {note}")
    print(
        "next: bash scripts/azure-load-test.sh --config "
        f"{result.config_path} --resource <alt-resource> --resource-group <rg>"
    )
    return 0
