"""Attach the voice harness to Locust (edge): ``register(environment.events)`` wires it all.

Hooks used (Locust's documented events):

* ``init_command_line_parser`` — one option per caller knob (``--ws-url`` ↔ ``WS_URL``…),
  plus ``--summary-json`` and ``--slo-file``;
* ``init`` — validate settings and, on workers and standalone runs, load and pre-encode the
  audio cache once per process (a bad value or missing cache stops the process with one line);
  with Locust's ``--web-login``, protect the web UI with HTTP Basic (:mod:`.web_auth`); with
  the web UI on, add the Voice view to it (:mod:`.webui`);
* ``test_start`` — re-read settings (workers get the master's options here); on the
  master/standalone place the run's one probe call (:mod:`.probe`; the run begins only if
  the upgrade works) unless ``PROBE=false`` or ``voice-loadtest run`` already placed it;
* ``report_to_master`` / ``worker_report`` — workers ship their histogram/counter deltas,
  the master merges them exactly;
* ``test_stopping`` — the run's end: every call finishes its current turn and hangs up
  normally (within Locust's ``--stop-timeout``; a call still going then is cut, its turn
  reported but not judged). The master asks each worker to end its calls this way and waits
  for its final report before Locust's quit stops listening, so answers that arrive during
  the stop grace are counted once everywhere — summary, CSV, ``/metrics``, per-turn log — and
  again as ``counts.after_run_time``;
* ``quitting`` — calls still running end at once and hand on their measurements (a signal;
  :mod:`.stopping`), then the master (or standalone process) builds the summary, writes the
  JSON (kept in a temporary file, or printed, if the reports folder fails; one line says
  where) and the HTML report beside it (:mod:`loadtest.metrics.report_cli`), writes Locust's
  HTML report when ``--locust-html`` asks, prints the table and sets the exit code to the SLO
  verdict (128 + the signal after one; :func:`judged_exit_code` tells :mod:`.locust_main`
  that it did); with ``--metrics-linger S`` it then keeps ``/metrics`` up S seconds, so
  Prometheus scrapes the final totals and verdict (like k6's ``--linger``). A worker exits 0:
  failed requests are measurements, judged on the master.

It also applies :mod:`.locust_fixes` (a worker must not stall on Locust's spawn messages; a
full disk or a double stop must not end in a traceback) and :mod:`.stopping` (signals).

Measurements reach Locust's own stats, CSV and HTML through ``events.request`` with
``request_type="voice"`` (milliseconds only at this boundary).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust.runners import STATE_STOPPING
from locust.stats import CSV_STATS_INTERVAL_SEC

from loadtest.errors import LoadtestError
from loadtest.metrics.azure_monitor_config import parse_azure_monitor_config
from loadtest.metrics.report_cli import default_report_path, save_summary, write_report
from loadtest.metrics.slo import parse_slo
from loadtest.metrics.summary import format_table
from loadtest.runtime import stopping
from loadtest.runtime.caller import flush_turn_log, hang_up_calls, resume_calls
from loadtest.runtime.exporter import DEFAULT_METRICS_PORT
from loadtest.runtime.harness import (
    DRAIN_MESSAGE,
    DRAINED_MESSAGE,
    VoiceFailure,
    harness_of,
    option_dest,
)
from loadtest.runtime.locust_fixes import (
    idempotent_user_stop,
    memoize_default_args,
    quiet_csv_disk_errors,
)
from loadtest.runtime.probe import PROBED_ENV, cache_rate, probe
from loadtest.runtime.web_auth import enable_basic_auth
from loadtest.runtime.webui import attach_voice_view
from loadtest.settings import SETTINGS, parse_number

__all__ = ["VoiceFailure", "judged_exit_code", "register"]

log = logging.getLogger("voice-loadtest")
_DRAIN_MARGIN_S = 15.0  # beyond Locust's stop timeout: closing calls, the final report
_JUDGING_S = 60.0  # the longest a second shutdown waits for the first one's verdict
_judged: list[int] = []  # the exit code of this process's verdict, once quitting set it


def judged_exit_code() -> int | None:
    """The exit code this process's run was judged to (``None``: it never was)."""
    return _judged[-1] if _judged else None


def _fatal(message: str) -> None:
    """Stop this process before any user spawns, with one line and exit code 2."""
    print(f"voice-loadtest: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _settle_csv(environment: Any) -> None:
    """Locust's CSV writer rewrites its files every ``CSV_STATS_INTERVAL_SEC`` and only
    closes them at exit: wait one rewrite, so the files hold the counts just merged."""
    if getattr(environment.parsed_options, "csv_prefix", None):
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.25)


def register(events: Any) -> None:
    """Attach the harness to Locust's ``events`` (call once, from the locustfile)."""
    memoize_default_args()
    idempotent_user_stop()
    quiet_csv_disk_errors()

    def _add_options(parser: Any) -> None:
        # Locust's own add_argument (not a group's) understands is_secret/include_in_web_ui.
        group = parser
        for knob in SETTINGS.values():
            group.add_argument(
                knob.option,
                dest=option_dest(knob.env),
                env_var=knob.env,
                metavar=knob.env,
                default=None,
                help=f"{knob.help} (default {knob.default!r})",
                is_secret=knob.secret,
            )
        group.add_argument(
            "--no-probe",
            dest=option_dest("PROBE"),
            action="store_const",
            const="false",
            include_in_web_ui=False,
            help="same as --probe false",
        )
        group.add_argument(
            "--summary-json",
            default=None,
            include_in_web_ui=False,
            help="write the run summary JSON here (master/standalone)",
        )
        group.add_argument(
            "--slo-file", default=None, include_in_web_ui=False, help="YAML with SLO overrides"
        )
        group.add_argument(
            "--locust-html",
            default=None,
            include_in_web_ui=False,
            help="write Locust's HTML report here after the summary (master/standalone; unlike "
            "--html, a failed write ends in one line and the summary is kept)",
        )
        group.add_argument(
            "--metrics-port",
            type=int,
            default=DEFAULT_METRICS_PORT,
            env_var="METRICS_PORT",
            include_in_web_ui=False,
            help="Prometheus /metrics port on the master/standalone (0: off)",
        )
        group.add_argument(
            "--metrics-linger",
            default="0",
            env_var="METRICS_LINGER",
            include_in_web_ui=False,
            help="seconds /metrics stays up after the run with the final values and verdict "
            "(master/standalone; more than two of your Prometheus scrape intervals)",
        )
        group.add_argument(
            "--metrics-host",
            default="0.0.0.0",
            env_var="METRICS_HOST",
            include_in_web_ui=False,
            help="address for /metrics (default: all IPv4 interfaces)",
        )

    def _init(environment: Any, web_ui: Any = None, **_: Any) -> None:
        harness = harness_of(environment)
        try:
            if web_ui is not None and web_ui.web_login:
                enable_basic_auth(web_ui)
            harness.configure()
            options = environment.parsed_options
            harness.azure_config = parse_azure_monitor_config(os.environ)
            # The SLO file is the master's (its verdict is judged there). A worker joining a
            # running test can receive the master's custom options, --slo-file included,
            # before this init runs; the path need not exist in the worker's container.
            slo_file = getattr(options, "slo_file", None)
            if slo_file and harness.role != "worker":
                harness.slo = parse_slo(Path(slo_file).read_text(), source=slo_file)
            linger = str(getattr(options, "metrics_linger", None) or "0")
            harness.linger_s = parse_number("METRICS_LINGER", linger, 0, 3600)
        except (LoadtestError, OSError) as exc:
            _fatal(str(exc))
        options = environment.parsed_options
        if options is not None:
            harness.serve(options.metrics_host, int(options.metrics_port))
        stopping.install(environment, harness)
        if web_ui is not None and harness.role != "worker":
            attach_voice_view(harness, web_ui)

    def _test_start(environment: Any, **_: Any) -> None:
        harness = harness_of(environment)
        harness.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        harness.started_monotonic = time.monotonic()
        harness.run_ended_ns = None
        resume_calls()
        try:
            settings = harness.configure()
        except LoadtestError as exc:
            log.error("voice-loadtest: %s", exc)
            environment.process_exit_code = 2
            environment.runner.quit()
            return
        if not settings.ws_url:
            log.error("voice-loadtest: no target: set WS_URL / --ws-url or --host ws://...")
            environment.process_exit_code = 2
            environment.runner.quit()
            return
        if harness.role != "worker":
            try:
                if settings.probe and not os.environ.get(PROBED_ENV):
                    library = harness.library
                    rate = library.sample_rate if library else cache_rate(settings.pcm_dir)
                    probe(settings, rate)
            except LoadtestError as exc:
                log.error("voice-loadtest: %s", exc)
                harness.probe_failed = str(exc)
                environment.process_exit_code = 2
                gevent.spawn_later(0.1, environment.runner.quit)
                return
            harness.start_azure_monitor()
        harness.start_background()

    def _wire_reports(environment: Any, **_: Any) -> None:
        harness = harness_of(environment)

        def ship(client_id: str, data: dict[str, Any], **__: Any) -> None:
            data["voice"] = harness.ship()
            data["voice_audio"] = harness.audio_identity()

        def merge(client_id: str, data: dict[str, Any], **__: Any) -> None:
            if "voice" in data:
                harness.absorb(data["voice"], worker=client_id)
            harness.note_audio(data.get("voice_audio") or {})

        def drain(environment: Any, msg: Any, **__: Any) -> None:
            # Locust's own graceful stop: test_stopping hangs the calls up after their turn,
            # and the users get the stop timeout to finish; then the final report.
            runner = environment.runner
            runner.stop()
            flush_turn_log()
            data: dict[str, Any] = {}
            environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
            runner.send_message("stats", data)
            runner.send_message(DRAINED_MESSAGE, None)

        def drained(environment: Any, msg: Any, **__: Any) -> None:
            harness.worker_drained(str(msg.node_id))

        environment.events.report_to_master.add_listener(ship)
        environment.events.worker_report.add_listener(merge)
        runner = environment.runner
        if harness.role == "worker" and runner is not None:
            runner.register_message(DRAIN_MESSAGE, drain, concurrent=True)
        elif harness.role == "master" and runner is not None:
            runner.register_message(DRAINED_MESSAGE, drained)

    def _test_stopping(environment: Any, **_: Any) -> None:
        harness = harness_of(environment)
        if harness.role == "master":
            # No rebalancing onto workers that are ending their calls (Locust would set this
            # right after this event; a worker joining now must not be handed callers).
            if harness.stopped_by is not None:
                # A signal: the calls end at once, not after their turn (runtime.stopping).
                stopping.finish_calls(environment, harness)
                environment.runner.update_state(STATE_STOPPING)
            else:
                harness.run_ended_ns = time.monotonic_ns()
                environment.runner.update_state(STATE_STOPPING)
                harness.drain_workers(float(environment.stop_timeout or 0) + _DRAIN_MARGIN_S)
            _settle_csv(environment)
        else:
            harness.run_ended_ns = time.monotonic_ns()
            hang_up_calls()

    def _test_stop(environment: Any, **_: Any) -> None:
        if harness_of(environment).role == "standalone":
            flush_turn_log()
            _settle_csv(environment)

    def _quitting(environment: Any, **_: Any) -> None:
        harness = harness_of(environment)
        if harness.role == "worker":
            if environment.process_exit_code is None:
                environment.process_exit_code = 0
                _judged.append(0)
            return  # Locust's own stop follows: the calls get the stop timeout to end
        if harness.quitting:  # a second shutdown (Locust's SIGTERM handler) during this one
            harness.judged.wait(_JUDGING_S)  # its exit code is the verdict this one sets
            harness.linger_over.set()
            return
        harness.quitting = True
        gevent.sleep(0)  # a signal's own handler notes it first (runtime.stopping)
        stopping.finish_calls(environment, harness)
        harness.stop_background()
        summary = harness.summary()
        if harness.azure_poller is not None:
            harness.azure_poller.close()
        if harness.probe_failed:
            summary["slo"]["reasons"].insert(0, harness.probe_failed)
            summary["slo"]["verdict"], summary["slo"]["exit_code"] = "invalid", 2
        code = summary["slo"]["exit_code"]
        options = environment.parsed_options
        path = getattr(options, "summary_json", None)
        saved, problem = save_summary(summary, Path(path)) if path else (None, None)
        print("\n" + format_table(summary), flush=True)
        if problem:
            print(f"voice-loadtest: error: {problem}", file=sys.stderr, flush=True)
            code = 2  # the verdict is known, but not where the caller looks for it
        elif saved:
            print(f"summary: {saved}", flush=True)
            try:  # the HTML report beside it; a failure is one line, never a new verdict
                report = write_report(saved, default_report_path(saved))
                print(f"report: {report}", flush=True)
            except LoadtestError as exc:
                log.error("voice-loadtest: no HTML report: %s", exc)
        html = getattr(options, "locust_html", None)
        if html and not _write_locust_html(environment, Path(html)):
            code = 2
        if harness.stopped_by:
            print(f"voice-loadtest: stopped by signal ({harness.stopped_by})", flush=True)
            code = 128 + signal.Signals[harness.stopped_by].value
        harness.verdict = summary["slo"]["verdict"]
        environment.process_exit_code = code
        _judged.append(code)
        harness.judged.set()
        if harness.linger_s and harness.serving:
            print(f"metrics: final values served for {harness.linger_s:g} s more", flush=True)
            harness.linger_over.wait(harness.linger_s)  # Ctrl-C ends it early

    def _write_locust_html(environment: Any, path: Path) -> bool:
        from locust.html import get_html_report

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            page = get_html_report(environment, show_download_link=False)  # type: ignore[no-untyped-call]
            path.write_text(page, "utf-8")
        except OSError as exc:
            print(
                f"voice-loadtest: error: cannot write Locust's report {path}: "
                f"{exc.strerror or exc}",
                file=sys.stderr,
                flush=True,
            )
            return False
        return True

    events.init_command_line_parser.add_listener(_add_options)
    events.init.add_listener(_init)
    events.test_start.add_listener(_test_start)
    events.init.add_listener(_wire_reports)
    events.test_stopping.add_listener(_test_stopping)
    events.test_stop.add_listener(_test_stop)
    events.quitting.add_listener(_quitting)
