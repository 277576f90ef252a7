"""The benchmark's caller process (edge): the real Locust user model in one process, stepped.

The benchmark starts this module pinned to one CPU::

    python -m bench.worker --url ws://127.0.0.1:PORT/api/v1/media/stream \\
        --pcm-dir audio_cache --steps 50,100,200 --settle-s 4 --step-s 10

It loads and pre-encodes the audio cache once, then, for each step, asks Locust's
``LocalRunner`` for that many :class:`~loadtest.runtime.locust_user.VoiceUser` callers (the
same user class, call driver and transport a Locust worker runs), lets them settle and
measures a window. One JSON line per step goes to stdout (see :func:`_measure`); the process
exits after the last step. Every caller places one long call (``TURNS_PER_USER`` cycles the
scenario's turns), so the realised frame rate of a window is not diluted by reconnects.

Monkey-patching happens here, first: this module is an entry point like the locustfile.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from bench.measure import GcPauses, StepWindow, rss_kb, window_result  # noqa: E402
from loadtest.metrics.voice_stats import VoiceStats  # noqa: E402
from loadtest.runtime.caller import flush_turn_log  # noqa: E402
from loadtest.runtime.harness import harness_of, option_dest  # noqa: E402

__all__ = ["main"]

# The harness's probe in a Locust worker, ten times as often: a step's window is 10 s, and with
# 100 samples its p99 would be the second-largest sample, not a percentile.
_LAG_INTERVAL_S = 0.01
_SPAWN_RATE = 100.0  # callers started per second (Locust warns above 100)


def _lag_monitor(stats: VoiceStats) -> None:
    """Event-loop lag: how late a 10 ms sleep wakes up (what a waiting receiver suffers)."""
    while True:
        before = time.monotonic_ns()
        gevent.sleep(_LAG_INTERVAL_S)
        late_ms = (time.monotonic_ns() - before) / 1e6 - _LAG_INTERVAL_S * 1000
        stats.observe("receive_lag_ms", max(0.0, late_ms))


def _turns_for(steps: list[int], per_step_s: float) -> int:
    """Turns per call so that no call ends during the run (a turn lasts >= ~3 s), without
    planning far more turns than that (a plan costs ~115 bytes per turn per caller)."""
    ramp_s = max(steps, default=0) / _SPAWN_RATE
    return int((ramp_s + len(steps) * per_step_s + 30) / 3) + 5


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _settings(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "WS_URL": args.url,
        "PCM_DIR": args.pcm_dir,
        "TURNS_PER_USER": str(args.turns),
        "GREETING": "off",
        "BARGE_IN_RATE": str(args.barge_in_rate),
        "FIRST_BYTE_TIMEOUT_SEC": "5",
        "SEED": str(args.seed),
        "TURN_LOG": args.turn_log,
        "WS_CA_BUNDLE": args.ca_bundle,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("--url", required=True)
    parser.add_argument("--pcm-dir", required=True)
    parser.add_argument("--steps", required=True, help="comma-separated caller counts")
    parser.add_argument("--settle-s", type=float, default=4.0)
    parser.add_argument("--step-s", type=float, default=10.0)
    parser.add_argument("--turns", type=int, help="TURNS_PER_USER (default: enough for the run)")
    parser.add_argument("--barge-in-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--agent-pid", type=int, default=None, help="also report its CPU")
    parser.add_argument("--turn-log", default="", help="the callers' per-turn log (TURN_LOG)")
    parser.add_argument("--ca-bundle", help="trust this CA for wss:// (WS_CA_BUNDLE)")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    if args.turns is None:
        args.turns = _turns_for(steps, args.settle_s + args.step_s)

    from locust import events
    from locust.env import Environment

    from loadtest.runtime.locust_user import VoiceUser

    started_ns = time.monotonic_ns()
    raw = _settings(args)
    options = argparse.Namespace(**{option_dest(env): value for env, value in raw.items()})
    environment = Environment(
        user_classes=[VoiceUser], events=events, host=args.url, parsed_options=options
    )
    harness = harness_of(environment)
    settings = harness.configure()  # the plugin's own path: validate, load the audio once
    runner = environment.create_local_runner()
    stats = harness.stats
    gevent.spawn(_lag_monitor, stats)
    _emit(
        {"event": "ready", "rss_kb": rss_kb(), "load_ms": (time.monotonic_ns() - started_ns) / 1e6}
    )
    stopping = Event()  # SIGTERM: stop stepping, let the calls end, flush the log, exit
    gevent.signal_handler(signal.SIGTERM, stopping.set)
    gc.collect()
    pauses = GcPauses()
    for callers in steps:
        runner.start(callers, _SPAWN_RATE)
        ramp_deadline = time.monotonic() + callers / _SPAWN_RATE + 30
        while runner.user_count < callers and time.monotonic() < ramp_deadline:
            if stopping.wait(0.1):
                break
        if stopping.wait(args.settle_s):
            break
        window = StepWindow.begin(stats, args.agent_pid)
        pauses.take()  # what the ramp collected is not part of the window
        if stopping.wait(args.step_s):
            break
        _emit(
            window_result(
                window, stats, callers=callers, chunk_ms=settings.chunk_ms, gc_pauses=pauses.take()
            )
        )
        flush_turn_log()
    runner.quit()
    flush_turn_log()
    _emit({"event": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
