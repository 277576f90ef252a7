"""Attach the voice harness to Locust (edge): ``register(environment.events)`` wires it all.

Hooks used (Locust's documented events):

* ``init_command_line_parser`` — one option per caller knob (``--ws-url`` ↔ ``WS_URL``…),
  plus ``--summary-json`` and ``--slo-file``;
* ``init`` — validate settings and, on workers and standalone runs, load and pre-encode the
  audio cache once per process (a bad value or missing cache stops the process with one line);
  with the web UI on, add the Voice view to it (:mod:`.webui`);
* ``test_start`` — re-read settings (workers get the master's options here), probe the
  target once on the master/standalone (the run begins only if a connection works);
* ``report_to_master`` / ``worker_report`` — workers ship their histogram/counter deltas,
  the master merges them exactly;
* ``quitting`` — the master (or standalone process) builds the summary, writes the JSON,
  prints the table and sets the exit code to the SLO verdict; with ``--metrics-linger S`` it
  then keeps ``/metrics`` up S seconds, so Prometheus scrapes the final totals and verdict
  (like k6's ``--linger``).

It also applies :mod:`.locust_fixes` (a worker must not stall on Locust's spawn messages).

Measurements reach Locust's own stats, CSV and HTML through ``events.request`` with
``request_type="voice"`` (milliseconds only at this boundary).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent

from loadtest.errors import LoadtestError
from loadtest.metrics.azure_monitor_config import parse_azure_monitor_config
from loadtest.metrics.slo import parse_slo
from loadtest.metrics.summary import format_table
from loadtest.runtime.exporter import DEFAULT_METRICS_PORT
from loadtest.runtime.harness import VoiceFailure, harness_of, option_dest
from loadtest.runtime.locust_fixes import memoize_default_args
from loadtest.runtime.webui import attach_voice_view
from loadtest.settings import SETTINGS, parse_number

__all__ = ["VoiceFailure", "register"]

log = logging.getLogger("voice-loadtest")


def _fatal(message: str) -> None:
    """Stop this process before any user spawns, with one line and exit code 2."""
    print(f"voice-loadtest: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def register(events: Any) -> None:
    """Attach the harness to Locust's ``events`` (call once, from the locustfile)."""
    memoize_default_args()

    def _add_options(parser: Any) -> None:
        # Locust's own add_argument (not a group's) understands is_secret/include_in_web_ui.
        group = parser
        for knob in SETTINGS.values():
            group.add_argument(
                knob.option,
                dest=option_dest(knob.env),
                env_var=knob.env,
                default=None,
                help=f"{knob.help} (default {knob.default!r})",
                is_secret=knob.secret,
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
        if web_ui is not None and harness.role != "worker":
            attach_voice_view(harness, web_ui)

    def _test_start(environment: Any, **_: Any) -> None:
        harness = harness_of(environment)
        harness.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        harness.started_monotonic = time.monotonic()
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
            from loadtest.runtime.runner import probe  # imported late: no gevent at import

            try:
                probe(settings)
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

        def merge(client_id: str, data: dict[str, Any], **__: Any) -> None:
            if "voice" in data:
                harness.absorb(data["voice"])

        environment.events.report_to_master.add_listener(ship)
        environment.events.worker_report.add_listener(merge)

    def _quitting(environment: Any, **_: Any) -> None:
        harness = harness_of(environment)
        if harness.role == "worker":
            return
        harness.stop_background()
        summary = harness.summary()
        if harness.azure_poller is not None:
            harness.azure_poller.close()
        if harness.probe_failed:
            summary["slo"]["reasons"].insert(0, harness.probe_failed)
            summary["slo"]["verdict"], summary["slo"]["exit_code"] = "invalid", 2
        path = getattr(environment.parsed_options, "summary_json", None)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(summary, indent=2) + "\n")
        print("\n" + format_table(summary), flush=True)
        if path:
            print(f"summary: {path}", flush=True)
        harness.verdict = summary["slo"]["verdict"]
        environment.process_exit_code = summary["slo"]["exit_code"]
        if harness.linger_s and harness.serving:
            print(f"metrics: final values served for {harness.linger_s:g} s more", flush=True)
            gevent.sleep(harness.linger_s)

    events.init_command_line_parser.add_listener(_add_options)
    events.init.add_listener(_init)
    events.test_start.add_listener(_test_start)
    events.init.add_listener(_wire_reports)
    events.quitting.add_listener(_quitting)
