"""``voice-loadtest``: one CLI with subcommands; each handler lives with its concern.

Exit codes are the same on every subcommand (:mod:`loadtest.errors`): 0 pass (or warn, or the
command did its job), 1 a failed SLO, 2 an invalid run or a configuration/usage error. Errors
from the :mod:`loadtest.errors` tree print as one line (``voice-loadtest: error: …``), never a
traceback; argparse's usage errors exit 2 as well.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from loadtest import __version__
from loadtest.errors import run_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from loadtest.audio import commands as audio

    parser = argparse.ArgumentParser(
        prog="voice-loadtest", description="Load harness for real-time voice agents."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    audio.add_generate_arguments(
        sub.add_parser("generate-audio", help="synthesise scenario turns into the audio cache")
    )
    audio_parser = sub.add_parser("audio", help="work with the audio cache")
    audio_sub = audio_parser.add_subparsers(dest="audio_command", required=True, metavar="ACTION")
    audio.add_inspect_arguments(audio_sub.add_parser("inspect", help="audit a cache folder"))

    from loadtest.storage.commands import add_storage_arguments

    add_storage_arguments(audio_sub)

    from loadtest.agent_sim.cli import add_agent_arguments, run_agent

    agent = sub.add_parser(
        "agent", help="run the reference voice agent simulator (ACS, Twilio or raw PCM)"
    )
    add_agent_arguments(agent)
    agent.set_defaults(handler=run_agent)

    from loadtest.metrics.report_cli import add_report_arguments

    add_report_arguments(
        sub.add_parser("report", help="self-contained HTML report from a summary JSON")
    )

    from loadtest.metrics.compare_cli import add_compare_arguments

    add_compare_arguments(
        sub.add_parser(
            "compare",
            help="compare run summaries side by side, gate CI on regressions, draw trends",
        )
    )

    locust = sub.add_parser(
        "locust",
        help="run Locust with the voice locustfile: voice-loadtest locust --master ...",
        add_help=False,
    )
    locust.add_argument("locust_args", nargs=argparse.REMAINDER)  # handled in main()

    from loadtest.runtime.runner import add_run_arguments

    add_run_arguments(
        sub.add_parser("run", help="local distributed load test: master + workers (+ agent)")
    )

    from loadtest.runtime.reports import add_reports_arguments

    add_reports_arguments(sub)

    from loadtest.alt.cli import add_alt_arguments

    add_alt_arguments(sub)

    return parser


def _exec_locust(locust_args: Sequence[str]) -> None:
    """Replace this process with Locust and the packaged locustfile
    (:mod:`loadtest.runtime.locust_main`); signals go to it."""
    command = [sys.executable, "-m", "loadtest.runtime.locust_main", *locust_args]
    os.execv(sys.executable, command)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["locust"]:  # pass everything through, --help included
        _exec_locust(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(parser.prog, args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
