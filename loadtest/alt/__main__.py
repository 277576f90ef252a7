"""``python -m loadtest.alt export …`` — the same as ``voice-loadtest alt export …``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loadtest.alt.cli import add_alt_actions
from loadtest.errors import LoadtestError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="voice-loadtest alt", description="Azure Load Testing support."
    )
    add_alt_actions(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except LoadtestError as exc:
        print(f"voice-loadtest: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
