"""``make bench`` / ``voice-loadtest bench``: how many callers a worker core carries truthfully,
how exact the measurements are against an agent's ground truth, and what a caller costs.

Wiring for the CLI: ``add_bench_arguments(subparser)`` (sets ``handler``). Nothing is imported
here, so :mod:`loadtest.bench.worker` can monkey-patch gevent before anything else loads.
"""

from __future__ import annotations

import argparse

__all__ = ["add_bench_arguments"]


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser`` (see :mod:`loadtest.bench.cli`)."""
    from loadtest.bench.cli import add_bench_arguments as add

    add(parser)
