"""How the harness's Locust processes stop on a signal: promptly, cleanly, measurements kept
(edge: signals, Locust messages).

Left to Python, SIGINT raises ``KeyboardInterrupt`` wherever the process happens to be: in a
socket callback inside gevent's hub (a traceback, and a worker left hanging), or in Locust's
wait for its workers (a traceback). Left to Locust, a signal on the master writes the summary
before the workers' last reports arrive, and a worker asked to stop twice at once (its own
signal and the master's quit) raises "Tried to stop User in an unexpected state".

So, installed at ``init`` (:func:`install`):

* **SIGINT** is taken by gevent (never an asynchronous ``KeyboardInterrupt``) and turned into
  Locust's own Ctrl-C path — a ``KeyboardInterrupt`` raised in the main greenlet, which Locust
  answers with its HTML report and an orderly shutdown — or, before the test has started,
  into a quiet exit; once the summary is written it only ends ``--metrics-linger``. A worker
  first ends its calls (below). Repeated signals change nothing.
* **SIGTERM** keeps Locust's own handler (an orderly shutdown; on a worker, the calls get
  Locust's stop timeout to end, as a scaled-down pod should); it is only noted, so the
  summary says how the run ended.
* **Ending the calls at once** (:func:`finish_calls`): a worker (on SIGINT, or when its
  master asks with ``voice_stop_now``) or a quitting standalone process kills its calls — each
  killed call still hands on what it measured — and a worker sends its final report and
  ``voice_stopped``; a master that quits while the test runs asks every worker to do that
  and waits up to :data:`FINAL_REPORTS_S` for their answers before the summary is built.

The master's (or standalone process's) exit code after a signal is 128 + its number (130 for
SIGINT, 143 for SIGTERM); a worker keeps Locust's. A signal after the run time is over only
hurries the run's end: the exit code stays the verdict.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import gevent

from loadtest.runtime.harness import Harness

__all__ = ["FINAL_REPORTS_S", "finish_calls", "install"]

log = logging.getLogger("voice-loadtest")

FINAL_REPORTS_S = 5.0
"""How long a quitting master waits for its workers' final reports."""
_CALLS_END_S = 3.0  # killed calls close their sockets (≤ 1 s each, all at once)
_STOP_NOW, _STOPPED = "voice_stop_now", "voice_stopped"


def install(environment: Any, harness: Harness) -> None:
    """Take over SIGINT, note SIGTERM, and register the stop messages (call at ``init``)."""
    gevent.signal_handler(signal.SIGINT, _on_interrupt, environment, harness)
    gevent.signal_handler(signal.SIGTERM, _note, environment, harness, signal.SIGTERM)
    runner = environment.runner
    if runner is None or not hasattr(runner, "register_message"):
        return
    if harness.role == "worker":
        runner.register_message(
            _STOP_NOW, lambda **_: finish_calls(environment, harness), concurrent=True
        )
    elif harness.role == "master":
        runner.register_message(_STOPPED, lambda msg, **_: harness.final_reports.add(msg.node_id))


def _note(environment: Any, harness: Harness, signum: int) -> bool:
    """Record the first signal before the verdict; ``False`` if one was already being handled
    or the run has ended (the summary is written: a signal now changes nothing in it).

    A signal after the run time is over (the calls finishing their turns, the reports being
    written) only hurries that end: the run lasted its time, so the verdict stands. That is
    the usual case under ``docker compose up --exit-code-from master``, which stops the
    master as soon as the workers it told to quit have exited."""
    if harness.signalled or harness.verdict is not None:
        return False
    harness.signalled = True
    if harness.run_ended_ns is None:
        harness.stopped_by = signal.Signals(signum).name
        if harness.role != "worker":
            environment.process_exit_code = 128 + signum
    return True


def _on_interrupt(environment: Any, harness: Harness) -> None:
    if harness.verdict is not None:
        harness.linger_over.set()  # Ctrl-C while /metrics lingers: leave now
        return
    if not _note(environment, harness, signal.SIGINT):
        return
    log.info("voice-loadtest: interrupted (SIGINT): ending the calls and writing the reports")
    main = gevent.get_hub().parent
    if harness.started_at is None and harness.role != "worker":
        main.throw(SystemExit(128 + signal.SIGINT))  # nothing ran yet: nothing to report
        return
    if harness.role == "worker":
        finish_calls(environment, harness)
        if not getattr(environment.runner, "connected", True):
            main.throw(SystemExit(128 + signal.SIGINT))
            return
    main.throw(KeyboardInterrupt)  # Locust's Ctrl-C path: its reports, then shutdown


def finish_calls(environment: Any, harness: Harness) -> None:
    """End the calls now and hand on their measurements (idempotent); see the module doc."""
    runner = environment.runner
    if harness.role == "master":
        _gather_final_reports(runner, harness)
        return
    if harness.calls_finished or runner is None:
        return
    harness.calls_finished = True
    users = getattr(runner, "user_greenlets", None)
    if users is not None and len(users):
        users.kill(block=True, timeout=_CALLS_END_S)
    if harness.role == "worker":
        send_stats = getattr(runner, "_send_stats", None)  # Locust's own report, voice included
        if send_stats is not None:
            send_stats()
        runner.send_message(_STOPPED)


def _gather_final_reports(runner: Any, harness: Harness) -> None:
    if harness.calls_finished or str(getattr(runner, "state", "")) not in ("spawning", "running"):
        return
    harness.calls_finished = True
    waiting = {str(c.id) for c in runner.clients.values() if str(c.state) != "missing"}
    for worker in waiting:
        runner.send_message(_STOP_NOW, client_id=worker)
    deadline = time.monotonic() + FINAL_REPORTS_S
    while time.monotonic() < deadline:
        present = {str(c.id) for c in runner.clients.values() if str(c.state) != "missing"}
        if not (waiting & present) - harness.final_reports:
            return
        gevent.sleep(0.05)
    log.warning(
        "voice-loadtest: %d worker(s) sent no final report within %.0f s",
        len((waiting & present) - harness.final_reports),
        FINAL_REPORTS_S,
    )
