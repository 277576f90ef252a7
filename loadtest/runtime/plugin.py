"""Attach the voice harness to Locust (edge): ``register(environment.events)`` wires it all.

Hooks used (Locust's documented events):

* ``init_command_line_parser`` — one option per caller knob (``--ws-url`` ↔ ``WS_URL``…),
  plus ``--summary-json`` and ``--slo-file``;
* ``init`` — validate settings and, on workers and standalone runs, load and pre-encode the
  audio cache once per process (a bad value or missing cache stops the process with one line);
* ``test_start`` — re-read settings (workers get the master's options here), probe the
  target once on the master/standalone (the run begins only if a connection works);
* ``report_to_master`` / ``worker_report`` — workers ship their histogram/counter deltas,
  the master merges them exactly;
* ``quitting`` — the master (or standalone process) builds the summary, writes the JSON,
  prints the table and sets the exit code to the SLO verdict.

Measurements reach Locust's own stats, CSV and HTML through ``events.request`` with
``request_type="voice"`` (milliseconds only at this boundary).
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent

from loadtest.errors import LoadtestError
from loadtest.metrics.exposition import RequestRow, Snapshot, target_label
from loadtest.metrics.slo import DEFAULT_SLO, SloConfig, parse_slo
from loadtest.metrics.summary import build_summary, format_table, timeline_entry
from loadtest.metrics.voice_stats import VoiceStats
from loadtest.runtime.exporter import DEFAULT_METRICS_PORT, serve_metrics
from loadtest.runtime.library import AudioLibrary, conversation_config
from loadtest.settings import SETTINGS, CallerSettings, parse_settings

__all__ = ["Harness", "VoiceFailure", "harness_of", "register"]

log = logging.getLogger("voice-loadtest")
_ATTR = "voice_harness"
_LAG_INTERVAL_S = 0.1
WINDOW_S = 5.0  # timeline resolution of the run summary / HTML report


class VoiceFailure(Exception):
    """The exception Locust records for a failed voice sample; ``str`` is the error name."""

    def __init__(self, error: str, detail: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail


class Harness:
    """Per-process state: settings, the shared audio library, and the measurements."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.stats = VoiceStats()  # this process's delta (workers ship and reset it)
        self.total = VoiceStats()  # master/standalone: everything merged
        self.settings: CallerSettings | None = None
        self.library: AudioLibrary | None = None
        self.slo: SloConfig = DEFAULT_SLO
        self.started_at: str | None = None
        self.started_monotonic = 0.0
        self.window = VoiceStats()  # master/standalone: the current timeline window
        self.timeline: list[dict[str, Any]] = []
        self._greenlets: list[gevent.Greenlet] = []
        self._server: Any = None
        self.probe_failed: str | None = None
        self.verdict: str | None = None
        self.rng = random.Random()

    # -------------------------------------------------------------- Sink protocol
    def sample(self, name: str, value_ms: float, error: str | None, detail: str) -> None:
        self.environment.events.request.fire(
            request_type="voice",
            name=name,
            response_time=value_ms,
            response_length=0,
            exception=None if error is None else VoiceFailure(error, detail),
            context={},
        )

    # -------------------------------------------------------------- roles
    @property
    def role(self) -> str:
        name = type(self.environment.runner).__name__
        return {"MasterRunner": "master", "WorkerRunner": "worker"}.get(name, "standalone")

    def raw_settings(self) -> dict[str, str | None]:
        options = self.environment.parsed_options
        raw: dict[str, str | None] = {}
        for knob in SETTINGS.values():
            value = getattr(options, _dest(knob.env), None) if options is not None else None
            raw[knob.env] = None if value is None else str(value)
        if not raw.get("WS_URL") and self.environment.host:
            raw["WS_URL"] = self.environment.host
        return raw

    def configure(self) -> CallerSettings:
        settings = parse_settings(self.raw_settings())
        if self.role != "master" and (
            self.library is None
            or self.settings is None
            or self.settings.pcm_dir != settings.pcm_dir
        ):
            self.library = AudioLibrary.load(settings)
            for warning in self.library.warnings:
                log.warning(warning)
        if self.library is not None:
            conversation_config(settings, self.library.sample_rate)  # validate combinations
        seed = settings.seed
        self.rng = random.Random(None if seed is None else f"{seed}-{os.getpid()}")
        self.settings = settings
        return settings

    def absorb(self, payload: dict[str, Any]) -> None:
        """Merge one worker delta (or this standalone process's own) into the run totals."""
        self.total.merge(payload)
        self.window.merge(payload)

    def start_background(self) -> None:
        """Health monitor (workers/standalone); timeline windows (master/standalone)."""
        if self._greenlets:
            return
        if self.role != "master":
            self._greenlets.append(gevent.spawn(self._monitor_loop))
        if self.role != "worker":
            self._greenlets.append(gevent.spawn(self._window_loop))

    def stop_background(self) -> None:
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self._greenlets.clear()

    def _monitor_loop(self) -> None:
        """Harness health: event-loop lag (what a waiting receiver suffers) and CPU."""
        runner = self.environment.runner
        ticks = 0
        while True:
            before = time.monotonic()
            gevent.sleep(_LAG_INTERVAL_S)
            lag_ms = (time.monotonic() - before - _LAG_INTERVAL_S) * 1000
            self.stats.observe("receive_lag_ms", lag_ms)
            self.stats.note_cpu(float(getattr(runner, "current_cpu_usage", 0.0) or 0.0))
            ticks += 1
            if self.role == "standalone" and ticks % 10 == 0:
                self.absorb(self.stats.take_delta())

    def current_cpu(self) -> dict[str, float]:
        runner = self.environment.runner
        if self.role == "master":
            return {str(c.id): float(c.cpu_usage) for c in runner.clients.values()}
        return {"local": float(getattr(runner, "current_cpu_usage", 0.0) or 0.0)}

    def _window_loop(self) -> None:
        while True:
            gevent.sleep(WINDOW_S)
            self.close_window()

    def close_window(self) -> None:
        cpu = max(self.current_cpu().values(), default=0.0)
        users = int(getattr(self.environment.runner, "user_count", 0) or 0)
        t_s = time.monotonic() - self.started_monotonic if self.started_monotonic else 0.0
        self.timeline.append(timeline_entry(self.window, t_s=t_s, users=users, cpu=cpu))
        self.window = VoiceStats()

    # -------------------------------------------------------------- exporter
    def snapshot(self) -> Snapshot:
        runner = self.environment.runner
        stats = self.total
        if self.role == "standalone":
            self.absorb(self.stats.take_delta())
        workers: dict[str, int] = {}
        if self.role == "master":
            for client in runner.clients.values():
                workers[str(client.state)] = workers.get(str(client.state), 0) + 1
        rows = []
        for entry in self.environment.stats.entries.values():
            rows.append(
                RequestRow(
                    name=entry.name,
                    requests=entry.num_requests,
                    failures=entry.num_failures,
                    rps=float(entry.current_rps or 0.0),
                    p50_ms=_current(entry, 0.5),
                    p95_ms=_current(entry, 0.95),
                    p99_ms=_current(entry, 0.99),
                )
            )
        return Snapshot(
            stats=stats,
            target=target_label(self.settings.ws_url if self.settings else ""),
            state=str(getattr(runner, "state", "ready")),
            users=int(getattr(runner, "user_count", 0) or 0),
            workers=workers,
            worker_cpu_percent=self.current_cpu(),
            requests=rows,
            slo=self.slo,
            slo_verdict=self.verdict,
        )

    def serve(self, host: str, port: int) -> None:
        if self._server is None and port > 0 and self.role != "worker":
            self._server = serve_metrics(self.snapshot, host, port)

    # -------------------------------------------------------------- summary
    def summary(self) -> dict[str, Any]:
        if self.role == "standalone":
            self.absorb(self.stats.take_delta())
        if self.window.counters or self.window.histograms["ttfb_ms"].count:
            self.close_window()
        runner = self.environment.runner
        settings = self.settings
        run = {
            "started_at": self.started_at,
            "duration_s": round(time.monotonic() - self.started_monotonic, 1)
            if self.started_monotonic
            else None,
            "users": getattr(runner, "target_user_count", None),
            "workers": len(runner.clients) if self.role == "master" else 1,
            "target": settings.ws_url if settings else None,
            "role": self.role,
        }
        shown = {}
        if settings is not None:
            for knob in SETTINGS.values():
                if not knob.secret:
                    value = getattr(settings, knob.env.lower(), None)
                    if knob.env == "FIRST_BYTE_TIMEOUT_SEC":
                        value = settings.first_byte_timeout_ms / 1000
                    shown[knob.env] = str(value) if isinstance(value, Path) else value
        return build_summary(
            self.total, slo=self.slo, settings=shown, run=run, timeline=self.timeline
        )


def _current(entry: Any, fraction: float) -> float | None:
    try:
        value = entry.get_current_response_time_percentile(fraction)
    except (KeyError, ValueError, ZeroDivisionError):
        return None
    return None if value is None else float(value)


def _dest(env: str) -> str:
    return "voice_" + env.lower()


def harness_of(environment: Any) -> Harness:
    """The harness attached to ``environment`` (created on first use)."""
    harness = getattr(environment, _ATTR, None)
    if harness is None:
        harness = Harness(environment)
        setattr(environment, _ATTR, harness)
    return harness


def _fatal(message: str) -> None:
    """Stop this process before any user spawns, with one line and exit code 2."""
    print(f"voice-loadtest: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def register(events: Any) -> None:
    """Attach the harness to Locust's ``events`` (call once, from the locustfile)."""

    def _add_options(parser: Any) -> None:
        # Locust's own add_argument (not a group's) understands is_secret/include_in_web_ui.
        group = parser
        for knob in SETTINGS.values():
            group.add_argument(
                knob.option,
                dest=_dest(knob.env),
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
            "--metrics-host",
            default="",
            env_var="METRICS_HOST",
            include_in_web_ui=False,
            help="address for /metrics (default: all interfaces)",
        )

    def _init(environment: Any, **_: Any) -> None:
        harness = harness_of(environment)
        try:
            harness.configure()
            options = environment.parsed_options
            slo_file = getattr(options, "slo_file", None)
            if slo_file:
                harness.slo = parse_slo(Path(slo_file).read_text(), source=slo_file)
        except (LoadtestError, OSError) as exc:
            _fatal(str(exc))
        options = environment.parsed_options
        if options is not None:
            harness.serve(options.metrics_host, int(options.metrics_port))

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
        harness.start_background()

    def _wire_reports(environment: Any, **_: Any) -> None:
        harness = harness_of(environment)

        def ship(client_id: str, data: dict[str, Any], **__: Any) -> None:
            data["voice"] = harness.stats.take_delta()

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

    events.init_command_line_parser.add_listener(_add_options)
    events.init.add_listener(_init)
    events.test_start.add_listener(_test_start)
    events.init.add_listener(_wire_reports)
    events.quitting.add_listener(_quitting)
