"""CLI handlers for ``voice-loadtest audio push|pull|ls`` (edge: argparse, environment, tqdm).

Wiring (in :mod:`loadtest.cli`): ``add_storage_arguments(audio_sub)`` adds the three actions
to the ``audio`` group. Handlers return 0; failures raise from the :mod:`loadtest.errors` tree
and the CLI prints one line and exits with the error's code (2 when the store stayed
unreachable for the whole ``--timeout``; each retry before that is one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Never

from tqdm import tqdm

from loadtest.audio.commands import default_audio_dir
from loadtest.storage.base import AudioStore
from loadtest.storage.retry import DEFAULT_TIMEOUT_S, RetryWindow
from loadtest.storage.settings import (
    ACCOUNT_URL_VAR,
    CONNECTION_STRING_VAR,
    CONTAINER_VAR,
    DEFAULT_CONTAINER,
    PREFIX_VAR,
    SAS_VAR,
    blob_settings_from_env,
)
from loadtest.storage.sync import pull_cache, push_cache

__all__ = ["add_storage_arguments", "open_store", "run_ls", "run_pull", "run_push"]

_AUTH_EPILOG = "\n".join(
    [
        "credentials (the first that is set wins):",
        f"  {CONNECTION_STRING_VAR:<40} connection string (account key or SAS; Azurite)",
        f"  {ACCOUNT_URL_VAR + ' + ' + SAS_VAR:<40} account URL and a SAS token",
        f"  {ACCOUNT_URL_VAR:<40} account URL and DefaultAzureCredential",
        f"  {'':<40} (managed/workload identity, az login)",
        f"location: {CONTAINER_VAR} (default {DEFAULT_CONTAINER}), {PREFIX_VAR} (default empty)",
    ]
)


def _announce(line: str) -> None:
    tqdm.write(f"voice-loadtest: {line}", file=sys.stderr)


def open_store(args: argparse.Namespace) -> AudioStore:
    """The Blob store the environment and ``--container``/``--prefix`` point at, retrying
    within ``--timeout`` seconds."""
    from loadtest.storage.blob import BlobStore

    # azure-identity logs every credential it tried at WARNING; with logging unconfigured,
    # Python would print that block ahead of our one-line error. Respect an explicit level.
    identity_log = logging.getLogger("azure.identity")
    if identity_log.level == logging.NOTSET:
        identity_log.setLevel(logging.ERROR)
    settings = blob_settings_from_env(os.environ, container=args.container, prefix=args.prefix)
    window = RetryWindow(args.timeout, on_retry=_announce)
    return BlobStore.from_settings(settings, window=window)


def _close(store: AudioStore) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


class _Bar:
    """A tqdm progress bar on stderr (silent when stderr is not a terminal)."""

    def __init__(self, desc: str) -> None:
        self._desc = desc
        self._bar: tqdm[Never] | None = None

    def start(self, total: int) -> None:
        self._bar = tqdm(total=total, unit="file", desc=self._desc, file=sys.stderr, disable=None)

    def advance(self, name: str) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _parser(
    audio_subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse.ArgumentParser:
    parser = audio_subparsers.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=_AUTH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--container", help=f"Blob container (default: ${CONTAINER_VAR}, else {DEFAULT_CONTAINER})"
    )
    parser.add_argument(
        "--prefix", help=f"name prefix in the container, e.g. caches/v1/ (default: ${PREFIX_VAR})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="give up (exit code 2) when Blob Storage stays unreachable this long overall; "
        "each retry is announced (default: %(default)g)",
    )
    return parser


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        type=Path,
        nargs="?",
        default=None,
        help="cache folder (default: $PCM_DIR, else audio_cache/)",
    )


def add_storage_arguments(
    audio_subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``push``, ``pull`` and ``ls`` to the ``audio`` subcommand group."""
    push = _parser(audio_subparsers, "push", "upload the audio cache to Azure Blob Storage")
    _add_dir(push)
    push.add_argument(
        "--delete",
        action="store_true",
        help="remove blobs directly under the prefix that the local manifest does not name",
    )
    push.add_argument(
        "--create-container", action="store_true", help="create the container if missing"
    )
    push.add_argument("--concurrency", type=int, default=4, help="parallel uploads (default: 4)")
    push.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    push.set_defaults(handler=run_push)

    pull = _parser(audio_subparsers, "pull", "download and verify the audio cache from Blob")
    _add_dir(pull)
    pull.add_argument("--concurrency", type=int, default=8, help="parallel downloads (default: 8)")
    pull.add_argument(
        "--delete",
        action="store_true",
        help="remove local *.pcm files that the downloaded manifest does not name",
    )
    pull.set_defaults(handler=run_pull)

    ls = _parser(audio_subparsers, "ls", "list the audio cache blobs (name, size, sha256)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(handler=run_ls)


def run_push(args: argparse.Namespace) -> int:
    directory = args.dir or default_audio_dir()
    store = open_store(args)
    bar = _Bar("push")
    try:
        if args.create_container and not args.dry_run and store.create_container():
            print(f"created container for {store.location}", file=sys.stderr)
        result = push_cache(
            store, directory, delete=args.delete, concurrency=args.concurrency,
            dry_run=args.dry_run, progress=bar,
        )  # fmt: skip
    finally:
        bar.close()
        _close(store)
    plan = result.plan
    if result.dry_run:
        for name in plan.order:
            print(f"upload  {name}")
        for name in plan.delete:
            print(f"delete  {name}")
    manifest = "uploaded" if plan.manifest_changed else "unchanged"
    verb = "would push" if result.dry_run else "pushed"
    print(
        f"{verb} {directory} to {store.location}: {len(plan.upload)} uploaded, "
        f"{len(plan.unchanged)} unchanged, manifest {manifest}, {len(plan.delete)} deleted"
    )
    return 0


def run_pull(args: argparse.Namespace) -> int:
    directory = args.dir or default_audio_dir()
    store = open_store(args)
    bar = _Bar("pull")
    try:
        result = pull_cache(
            store, directory, concurrency=args.concurrency, delete=args.delete, progress=bar
        )
    finally:
        bar.close()
        _close(store)
    plan = result.plan
    manifest = "written" if result.manifest_written else "unchanged"
    removed = f", {len(result.removed)} stray removed" if result.removed else ""
    print(
        f"pulled {store.location} into {directory}: {len(plan.download)} downloaded, "
        f"{len(plan.present)} already present, manifest {manifest}{removed}"
    )
    if plan.stray and not args.delete:
        print(
            f"warning: {len(plan.stray)} local .pcm file(s) not in the manifest (e.g. "
            f"{plan.stray[0]}); `audio inspect` will flag them: pull with --delete to remove",
            file=sys.stderr,
        )
    return 0


def run_ls(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        objects = store.list_objects()
    finally:
        _close(store)
    if args.json:
        rows = [
            {
                "name": o.name, "size": o.size, "sha256": o.sha256,
                "last_modified": o.last_modified.isoformat() if o.last_modified else None,
            }
            for o in objects
        ]  # fmt: skip
        print(json.dumps({"location": store.location, "objects": rows}, indent=2))
        return 0
    width = max([len("name"), *(len(o.name) for o in objects)])
    print(f"{'name':<{width}}  {'size':>10}  sha256")
    for o in objects:
        print(f"{o.name:<{width}}  {o.size:>10}  {o.sha256 or '-'}")
    total = sum(o.size for o in objects)
    print(f"{len(objects)} object(s), {total} bytes in {store.location}")
    return 0
