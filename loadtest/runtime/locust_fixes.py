"""Work-arounds for Locust behaviour that spoils a worker's timing (edge).

:func:`memoize_default_args` — a Locust worker that gets a *spawn* message (each step of a
ramp-up, and every rebalance when a worker joins or leaves) keeps those of the master's
options that are not Locust's own, testing each one against
``locust.argument_parser.default_args_dict()`` — which builds and parses Locust's whole
argument parser on every call. With the harness's options that is about a hundred parser
builds in a row (measured: a 0.1–0.35 s stall of the worker's event loop, found with gevent's
blocking monitor), during which no caller sends a frame: every call on that worker records
late frames and inflated TTFBs at the very moment an autoscaler adds a worker. Locust's own
arguments do not change while a process runs, so the answer is computed once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from locust import argument_parser

__all__ = ["memoize_default_args"]


def memoize_default_args() -> None:
    """Make ``default_args_dict()`` build Locust's parser once per process (idempotent).

    Each call still returns its own dict (a copy), as the original did.
    """
    current: Callable[[], dict[str, Any]] = argument_parser.default_args_dict
    if getattr(current, "_voice_loadtest_memoized", False):
        return
    once = functools.cache(current)

    @functools.wraps(current)
    def default_args_dict() -> dict[str, Any]:
        return dict(once())

    default_args_dict._voice_loadtest_memoized = True  # type: ignore[attr-defined]
    argument_parser.default_args_dict = default_args_dict
