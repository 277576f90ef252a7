"""Per-process harness state behind the Locust plugin (edge).

One :class:`Harness` per Locust process: the validated settings, the shared audio library, this
process's measurement delta (workers ship and reset it), and on the master or a standalone
process the merged run totals, the timeline windows, the Prometheus snapshot, the Azure
Monitor poller and the workers that went missing. Locust's master marks a worker *missing*
when its heartbeats stop (about 3 s) and fires no event for it, so the master's harness
looks at the worker list every second; a missing worker's calls in flight are what its
reports said were started and not yet ended. :mod:`loadtest.runtime.plugin` wires it to
Locust's events.
"""

from __future__ import annotations

import logging
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import gevent.event

from loadtest.compat_env import COMPAT_VARIABLES
from loadtest.metrics.azure_monitor import AzureMonitorPoller
from loadtest.metrics.azure_monitor_config import AzureMonitorConfig
from loadtest.metrics.exposition import AzureMonitorValue, RequestRow, Snapshot, target_label
from loadtest.metrics.live import LiveState, WorkerHealth
from loadtest.metrics.slo import DEFAULT_SLO, SloConfig
from loadtest.metrics.summary import build_summary, timeline_entry
from loadtest.metrics.voice_stats import VoiceStats
from loadtest.runtime.exporter import serve_metrics
from loadtest.runtime.library import AudioLibrary, conversation_config
from loadtest.runtime.turnlog import check_path as check_turn_log
from loadtest.settings import SETTINGS, CallerSettings, parse_settings

__all__ = [
    "DRAINED_MESSAGE",
    "DRAIN_MESSAGE",
    "WINDOW_S",
    "Harness",
    "VoiceFailure",
    "harness_of",
    "option_dest",
]

log = logging.getLogger("voice-loadtest")
_ATTR = "voice_harness"
_LAG_INTERVAL_S = 0.1
_WORKER_WATCH_S = 1.0
WINDOW_S = 5.0  # timeline resolution of the run summary / HTML report
DRAIN_MESSAGE = "voice_drain"  # master → worker: end your calls, send your final report
DRAINED_MESSAGE = "voice_drained"  # worker → master: the final report was sent before this


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
        self.total = VoiceStats()  # master/standalone: everything merged; worker: all it shipped
        self.settings: CallerSettings | None = None
        self.library: AudioLibrary | None = None
        self.slo: SloConfig = DEFAULT_SLO
        self.started_at: str | None = None
        self.started_monotonic = 0.0
        self.window = VoiceStats()  # master/standalone: the current timeline window
        self.peak_workers = 0
        self.timeline: list[dict[str, Any]] = []
        self._greenlets: list[gevent.Greenlet] = []
        self.ready = gevent.event.Event()  # set once settings and audio are loaded
        self._server: Any = None
        self.probe_failed: str | None = None
        self.verdict: str | None = None
        self.linger_s = 0.0  # --metrics-linger: /metrics stays up this long after the run
        self.azure_config: AzureMonitorConfig | None = None
        self.azure_poller: AzureMonitorPoller | None = None
        self.rng = random.Random()
        self.caches: dict[str, dict[str, Any]] = {}  # master/standalone: digest → identity
        self.scenarios: set[str] = set()  # ... and the scenarios they were given
        self.run_ended_ns: int | None = None  # the run's own end (its run time) began
        self._draining: set[str] = set()  # master: workers whose final report is awaited
        self._drained = gevent.event.Event()
        self.in_flight: dict[str, int] = {}  # master: worker id → calls started, not ended
        self.workers_lost: list[dict[str, Any]] = []  # master: workers that went missing
        self.stopped_by: str | None = None  # the signal that ended the run (SIGINT, SIGTERM)
        self.signalled = False  # a signal arrived (it may only have hurried the run's own end)
        self.quitting = False  # master/standalone: the summary is being built and written
        self.judged = gevent.event.Event()  # ... and it is written, the exit code is set
        self.calls_finished = False  # the calls were ended at once (see runtime.stopping)
        self.final_reports: set[str] = set()  # master: workers whose final report is in
        self.linger_over = gevent.event.Event()  # set to end --metrics-linger early

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
        # From the options first: a worker that joins a running test gets its first spawn
        # order (and test_start) while Locust is still constructing it, before
        # environment.runner is set; taking it for standalone would keep its deltas local.
        options = self.environment.parsed_options
        if options is not None and getattr(options, "worker", False):
            return "worker"
        if options is not None and getattr(options, "master", False):
            return "master"
        name = type(self.environment.runner).__name__
        return {"MasterRunner": "master", "WorkerRunner": "worker"}.get(name, "standalone")

    def raw_settings(self) -> dict[str, str | None]:
        options = self.environment.parsed_options
        raw: dict[str, str | None] = {}
        for knob in SETTINGS.values():
            value = getattr(options, option_dest(knob.env), None) if options is not None else None
            raw[knob.env] = None if value is None else str(value)
        if not raw.get("WS_URL") and self.environment.host:
            raw["WS_URL"] = self.environment.host
        # The accelerator's own variables are not Locust options: they come from the
        # environment only, and parse_settings honours or refuses each.
        raw.update({name: os.environ[name] for name in COMPAT_VARIABLES if name in os.environ})
        return raw

    def configure(self) -> CallerSettings:
        settings = parse_settings(self.raw_settings())
        if self.role != "master" and (
            self.library is None
            or self.settings is None
            or self.settings.pcm_dir != settings.pcm_dir
            or self.settings.scenarios_file != settings.scenarios_file
        ):
            self.library = AudioLibrary.load(settings)
            for warning in self.library.warnings:
                log.warning(warning)
            if self.library.cache is not None:
                log.info("voice-loadtest: audio %s", self.library.cache.line())
        if self.role != "master" and settings.turn_log:
            check_turn_log(settings.turn_log)
        if self.library is not None:
            conversation_config(settings, self.library.agent_sample_rate)  # validate combinations
        seed = settings.seed
        self.rng = random.Random(None if seed is None else f"{seed}-{os.getpid()}")
        self.settings = settings
        self.ready.set()
        return settings

    def audio_identity(self) -> dict[str, Any]:
        """Which audio this process plays: its cache's identity
        (:class:`~loadtest.audio.cache.CacheIdentity`) and the scenario names it was given (a
        worker ships this with every report)."""
        library = self.library
        if library is None:
            return {}
        names = sorted(s.name for s in library.scenarios)
        identity = {} if library.cache is None else library.cache.as_dict()
        return {**identity, "scenarios": names}

    def note_audio(self, identity: dict[str, Any]) -> None:
        """Record a worker's :meth:`audio_identity` (or this standalone process's own)."""
        if identity.get("digest"):
            cache = {k: v for k, v in identity.items() if k != "scenarios"}
            self.caches.setdefault(str(identity["digest"]), cache)
        self.scenarios.update(str(name) for name in identity.get("scenarios", ()))

    def absorb(self, payload: dict[str, Any], worker: str | None = None) -> None:
        """Merge one worker delta (or this standalone process's own) into the run totals."""
        self.total.merge(payload)
        self.window.merge(payload)
        if worker is not None:
            counters = payload.get("counters", {})
            started = int(counters.get("calls", 0)) - int(counters.get("calls_ended", 0))
            self.in_flight[worker] = self.in_flight.get(worker, 0) + started

    def watch_workers(self) -> None:
        """Note workers Locust has marked missing since the last look (and forget one that
        came back: its calls were not lost)."""
        runner = self.environment.runner
        clients = getattr(runner, "clients", None)
        if clients is None:
            return
        states = {str(client.id): str(client.state) for client in clients.values()}
        lost = {entry["worker"] for entry in self.workers_lost}
        for worker, state in states.items():
            if state == "missing" and worker not in lost:
                calls = max(0, self.in_flight.get(worker, 0))
                t_s = time.monotonic() - self.started_monotonic if self.started_monotonic else 0
                self.workers_lost.append(
                    {
                        "worker": worker,
                        "lost_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "t_s": round(t_s, 1),
                        "calls_in_flight": calls,
                    }
                )
                log.warning(
                    "voice-loadtest: worker %s went missing with %d call(s) in flight",
                    worker,
                    calls,
                )
        self.workers_lost = [
            entry
            for entry in self.workers_lost
            if states.get(entry["worker"], "missing") == "missing"
        ]

    def start_background(self) -> None:
        """Health monitor (workers/standalone); timeline windows (master/standalone)."""
        if self._greenlets:
            return
        if self.role != "master":
            self._greenlets.append(gevent.spawn(self._monitor_loop))
        if self.role != "worker":
            self._greenlets.append(gevent.spawn(self._window_loop))
        if self.role == "master":
            self._greenlets.append(gevent.spawn(self._watch_loop))

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

    def _watch_loop(self) -> None:
        while True:
            gevent.sleep(_WORKER_WATCH_S)
            self.watch_workers()

    def _window_loop(self) -> None:
        while True:
            gevent.sleep(WINDOW_S)
            self.close_window()

    def close_window(self) -> None:
        if self.role == "master":
            self.peak_workers = max(self.peak_workers, len(self.environment.runner.clients))
        cpu = max(self.current_cpu().values(), default=0.0)
        users = int(getattr(self.environment.runner, "user_count", 0) or 0)
        t_s = time.monotonic() - self.started_monotonic if self.started_monotonic else 0.0
        self.timeline.append(timeline_entry(self.window, t_s=t_s, users=users, cpu=cpu))
        self.window = VoiceStats()

    # -------------------------------------------------------------- the run's end
    def drain_workers(self, timeout_s: float) -> None:
        """Master: ask every connected worker to end its calls (each finishes its current
        turn and hangs up, within Locust's stop timeout) and to send its final report, and
        wait for those reports — up to ``timeout_s`` — before Locust's quit closes the
        master's message loop. That quit stops listening 0.5 s after telling the workers to
        stop, so what they measure during the stop grace would otherwise reach their per-turn
        logs but not the master's summary, CSV or ``/metrics``."""
        from locust.runners import STATE_MISSING

        runner = self.environment.runner
        workers = [c.id for c in runner.clients.values() if c.state != STATE_MISSING]
        if not workers:
            return
        self._draining = set(workers)
        self._drained.clear()
        for worker in workers:
            runner.send_message(DRAIN_MESSAGE, None, worker)
        deadline = time.monotonic() + timeout_s
        while not self._drained.wait(0.1) and time.monotonic() < deadline:
            # A worker that quit or went missing meanwhile sends nothing more: stop waiting.
            present = {c.id for c in runner.clients.values() if c.state != STATE_MISSING}
            for worker in self._draining - present:
                self.worker_drained(worker)
        if self._draining:
            log.warning(
                "voice-loadtest: no final report from %d worker(s) within %.0f s: %s; their "
                "last measurements are missing from the totals",
                len(self._draining), timeout_s, ", ".join(sorted(self._draining)),
            )  # fmt: skip
        self._draining = set()

    def worker_drained(self, worker: str) -> None:
        """Master: ``worker``'s final report has been merged (it came just before)."""
        self._draining.discard(worker)
        if not self._draining:
            self._drained.set()

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
                    sum_ms=float(entry.total_response_time),
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
            azure_monitor=[
                AzureMonitorValue(m.resource, m.metric, m.aggregation.value, m.value)
                for m in (self.azure_poller.latest() if self.azure_poller else [])
            ],
            azure_monitor_errors=self.azure_poller.errors() if self.azure_poller else {},
            workers_lost=len(self.workers_lost),
            calls_lost=sum(entry["calls_in_flight"] for entry in self.workers_lost),
        )

    def live_state(self) -> LiveState:
        """The runner's state, users and each load generator's CPU now (for the live view)."""
        runner = self.environment.runner
        if self.role == "master":
            workers = tuple(
                WorkerHealth(str(c.id), float(c.cpu_usage), str(c.state), int(c.user_count))
                for c in runner.clients.values()
            )
        else:
            users = int(getattr(runner, "user_count", 0) or 0)
            cpu = float(getattr(runner, "current_cpu_usage", 0.0) or 0.0)
            workers = (WorkerHealth("local", cpu, str(getattr(runner, "state", "")), users),)
        users = int(getattr(runner, "user_count", 0) or 0)
        return LiveState(str(getattr(runner, "state", "ready")), users, workers, self.slo)

    def start_azure_monitor(self) -> None:
        """Poll the agent's Azure resources (master/standalone only, when configured)."""
        config = self.azure_config
        if self.azure_poller is None and config is not None and config.enabled:
            self.azure_poller = AzureMonitorPoller(config)
            self.azure_poller.start()

    def ship(self) -> dict[str, Any]:
        """A worker's report: the delta since the last one (also kept for its own /metrics)."""
        payload = self.stats.take_delta()
        self.total.merge(payload)
        return payload

    @property
    def serving(self) -> bool:
        """Whether this process serves ``/metrics``."""
        return self._server is not None

    def serve(self, host: str, port: int) -> None:
        """``/metrics`` + ``/healthz``: the run on the master/standalone, the process's own
        harness health on a worker (its probe endpoint)."""
        if self._server is None and port > 0:
            self._server = serve_metrics(self.snapshot, host, port)

    # -------------------------------------------------------------- summary
    def summary(self, *, final: bool = True) -> dict[str, Any]:
        """The run summary of everything merged so far. ``final`` (the end of the run) also
        closes the open timeline window; the live view leaves it open."""
        if self.role == "standalone":
            self.absorb(self.stats.take_delta())
        if final and (self.window.counters or self.window.histograms["ttfb_ms"].count):
            self.close_window()
        if self.role == "master":
            self.watch_workers()
        runner = self.environment.runner
        settings = self.settings
        run = {
            "started_at": self.started_at,
            "duration_s": round(time.monotonic() - self.started_monotonic, 1)
            if self.started_monotonic
            else None,
            **self._load_used(),
            "workers": max(self.peak_workers, len(runner.clients)) if self.role == "master" else 1,
            "target": settings.ws_url if settings else None,
            "role": self.role,
            "stopped_by": self.stopped_by,
        }
        if self.role == "standalone":
            self.note_audio(self.audio_identity())
        # More than one digest means the workers played different audio: shown, not hidden.
        run["audio_cache"] = sorted(self.caches)
        run["scenarios"] = sorted(self.scenarios)
        shown = {}
        if settings is not None:
            for knob in SETTINGS.values():
                if not knob.secret:
                    value = getattr(settings, knob.env.lower(), None)
                    if knob.env.endswith("_SEC"):  # kept in ms: shown in the variable's unit
                        value_ms = getattr(settings, knob.env.lower()[:-4] + "_ms")
                        value = None if value_ms is None else value_ms / 1000
                    shown[knob.env] = str(value) if isinstance(value, Path) else value
        extra: dict[str, Any] = {"notes": self._notes()}
        if self.caches:
            # One cache, normally; workers that played different audio are shown, not hidden.
            first, *others = self.caches.values()
            extra["audio"] = {**first, **({"others": others} if others else {})}
        if self.azure_poller is not None:
            extra["azure_monitor"] = {
                "metrics": self.azure_poller.summary(),
                "errors": self.azure_poller.errors(),
            }
        return build_summary(
            self.total,
            slo=self.slo,
            settings=shown,
            run=run,
            timeline=self.timeline,
            workers_lost=self.workers_lost,
            extra=extra,
        )

    def _notes(self) -> list[str]:
        """What the user should know about how the run was counted."""
        notes = []
        benign = self.total.total("closes_benign_failed")
        if benign and self.raw_settings().get("WS_IGNORE_CLOSE_EXCEPTIONS") is None:
            notes.append(
                f"{benign} failure(s) were the agent closing normally (1000/1001/1006) "
                "mid-turn; the accelerator's load test ignored such closes by default, "
                "this tool counts them: WS_IGNORE_CLOSE_EXCEPTIONS=true to not fail them "
                "(=false to keep them and drop this note)"
            )
        return notes

    def _load_used(self) -> dict[str, Any]:
        """Users, spawn rate and run time as Locust settled them (its command line,
        ``LOCUST_*``, ``locust.conf``, its defaults), for the summary: what the run used."""
        options = self.environment.parsed_options
        users = getattr(options, "num_users", None)
        if users is None:  # Locust's default, or users set in the web UI: the most that ran
            seen = [int(entry.get("users") or 0) for entry in self.timeline]
            users = max([*seen, int(getattr(self.environment.runner, "target_user_count", 0) or 0)])
        return {
            "users": users,
            "spawn_rate": getattr(options, "spawn_rate", None),
            "run_time_s": getattr(options, "run_time", None),
        }


def _current(entry: Any, fraction: float) -> float | None:
    try:
        value = entry.get_current_response_time_percentile(fraction)
    except (KeyError, ValueError, ZeroDivisionError):
        return None
    return None if value is None else float(value)


def option_dest(env: str) -> str:
    return "voice_" + env.lower()


def harness_of(environment: Any) -> Harness:
    """The harness attached to ``environment`` (created on first use)."""
    harness = getattr(environment, _ATTR, None)
    if harness is None:
        harness = Harness(environment)
        setattr(environment, _ATTR, harness)
    return harness
