"""``python -m loadtest.alt export …`` — the same as ``voice-loadtest alt export …``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loadtest.alt.cli import add_alt_actions
from loadtest.errors import run_command

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="voice-loadtest alt", description="Azure Load Testing support."
    )
    add_alt_actions(parser)
    args = parser.parse_args(argv)
    return run_command("voice-loadtest", args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
