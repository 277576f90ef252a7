"""Locust with the packaged locustfile: ``voice-loadtest locust ARGS`` (edge: the process).

Every Locust process of the project starts here — ``voice-loadtest locust``, the master and
workers of ``voice-loadtest run``, the container's roles — so two things hold that plain
``locust -f loadtest/locustfile.py`` does not give:

* **Exit codes with one meaning** (:mod:`loadtest.errors`). Locust exits 1 for some of its own
  set-up errors (``--autoquit`` without ``--autostart``, a master that gave up waiting for its
  workers), 255 for others, and ``--exit-code-on-error`` (1) when any request failed. Here 1 is
  a failed SLO and nothing else: the harness judges the run in Locust's ``quitting`` event and
  Locust exits with that verdict's code; any other non-zero exit — nothing was judged — is 2.
  Interrupted processes keep their signal's code (130, 143).
* **``--help`` lists the voice options** (``--ws-url``, ``--barge-in-rate``, ``--slo-file``…):
  Locust prints its help before it imports the locustfile, whose
  ``init_command_line_parser`` hook adds them, so here the locustfile is imported first.

Locust is imported inside :func:`main` (it monkey-patches the standard library on import), so
importing this module for :data:`LOCUSTFILE` leaves the importer's process as it was.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from loadtest.errors import EXIT_INVALID, EXIT_PASS

__all__ = ["LOCUSTFILE", "exit_code", "main"]

LOCUSTFILE = Path(__file__).resolve().parent.parent / "locustfile.py"
_SIGNALLED = frozenset({130, 143})  # SIGINT, SIGTERM as shells report them


def exit_code(locust_code: object, judged: int | None) -> int:
    """The process's exit code from Locust's (``SystemExit.code``) and the code of the verdict
    the harness reached (``None``: the run was never judged)."""
    if locust_code is None or locust_code == EXIT_PASS:
        return EXIT_PASS
    if judged is not None and locust_code == judged:
        return judged
    if locust_code in _SIGNALLED:
        return int(locust_code)
    return EXIT_INVALID


def _print_help(args: Sequence[str]) -> None:
    """Locust's help with the harness's options in it (exits 0, as ``--help`` does)."""
    from locust import events
    from locust.argument_parser import get_parser

    from loadtest.runtime.plugin import register

    register(events)  # what the locustfile does; its options hook fills the help
    get_parser().parse_args(list(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run Locust with ``-f LOCUSTFILE ARGV``; returns the exit code (see the module doc)."""
    args = ["-f", str(LOCUSTFILE), *(sys.argv[1:] if argv is None else argv)]
    if "-h" in args or "--help" in args:
        _print_help(args)
    from locust.main import main as locust_main

    from loadtest.runtime.plugin import judged_exit_code

    sys.argv = ["locust", *args]
    try:
        locust_main()  # type: ignore[no-untyped-call]
    except SystemExit as exc:
        return exit_code(exc.code, judged_exit_code())
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
