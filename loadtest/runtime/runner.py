"""``voice-loadtest run``: a local distributed run in one command (edge: processes).

Checks the reports folder, starts (optionally) the reference agent, places the run's one
probe call (:mod:`loadtest.runtime.probe`; not with ``--no-probe``), then one Locust master and
``--workers`` worker processes with rebalancing on, headless; the master writes the CSV,
Locust's HTML, the summary JSON and the voice report (``summary.html``) and prints the summary
and SLO table. The exit code is the SLO verdict (0 pass/warn, 1 fail, 2 invalid run or set-up
error). With ``--baseline`` the run is compared with an earlier summary (``--fail-on`` gates on
regressions) and the comparison goes into the summary and the report.

Stopping: every child dies with this process (:func:`~loadtest.procutil.spawn_child`) and
sits in its own process group, so a terminal's Ctrl-C reaches only this process. SIGINT or
SIGTERM here sends SIGINT to the master, which ends the calls, gathers the workers' last
measurements and writes its reports (:mod:`loadtest.runtime.stopping`); the workers follow
the master's quit, and whatever still runs after :data:`STOP_GRACE_S` is killed. The partial
``summary.json`` and ``summary.html`` stay, "stopped by signal" is printed, and the exit code
is 130 (SIGINT) or 143 (SIGTERM); a second signal kills the children at once. A master that
dies on its own ends the run with one line and exit code 2.

Locust's own settings are Locust's: ``-u/-r/-t`` reach the master only when given here, so
otherwise Locust's precedence decides (``LOCUST_USERS``/``LOCUST_SPAWN_RATE``/
``LOCUST_RUN_TIME``, then ``locust.conf``, then Locust's defaults: one user, one per second,
until stopped). ``-H/--host`` is the agent URL (``--ws-url``); a host only Locust knows (from
``LOCUST_HOST`` or ``locust.conf``) is probed by the master. The caller knobs (``WS_URL``,
``TURNS_PER_USER``, …) reach every process as environment variables; flags given here override
the inherited environment.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from loadtest.errors import ConfigError, LoadtestError
from loadtest.metrics.compare_cli import add_baseline_arguments, apply_baseline, load_baseline
from loadtest.metrics.report_cli import check_reports_dir, write_report
from loadtest.procutil import free_port, spawn_child, stop_processes
from loadtest.runtime.library import AudioLibrary
from loadtest.runtime.probe import PROBED_ENV, cache_rate, probe
from loadtest.settings import SETTINGS, parse_settings

__all__ = ["STOP_GRACE_S", "add_run_arguments", "knob_environment", "run"]

AGENT_PATH = "/api/v1/media/stream"
STOP_GRACE_S = 10.0
"""After a signal: how long the master gets to gather the last measurements and write its
reports before it is killed (it needs a few seconds)."""
_WORKER_GRACE_S = 3.0  # then the workers, which the master told to quit


def add_knob_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per caller knob (``--turns-per-user`` for ``TURNS_PER_USER``…)."""
    group = parser.add_argument_group("caller settings (each also an environment variable)")
    for knob in SETTINGS.values():
        # Locust's -H/--host names the agent here too, as the target of every Locust user.
        aliases = ["-H", "--host"] if knob.env == "WS_URL" else []
        group.add_argument(knob.option, *aliases, dest=f"knob_{knob.env}", metavar=knob.env,
                           help=f"{knob.help} [${knob.env}, default {knob.default!r}]")  # fmt: skip
    group.add_argument("--no-probe", dest="knob_PROBE", action="store_const", const="false",
                       help="same as --probe false")  # fmt: skip


def knob_environment(args: argparse.Namespace, base: dict[str, str]) -> dict[str, str]:
    """``base`` with every knob flag that was given written as its environment variable."""
    env = dict(base)
    for knob in SETTINGS.values():
        value = getattr(args, f"knob_{knob.env}", None)
        if value is not None:
            env[knob.env] = str(value)
    return env


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    locust = " (default: Locust's: LOCUST_{}, locust.conf, else {})"
    parser.add_argument(
        "--users", "-u", type=int, help="concurrent callers" + locust.format("USERS", 1)
    )
    parser.add_argument(
        "--spawn-rate", "-r", type=float, help="callers started/s" + locust.format("SPAWN_RATE", 1)
    )
    parser.add_argument(
        "--run-time", "-t", help="e.g. 90s, 10m, 1h30m" + locust.format("RUN_TIME", "until stopped")
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="accepted for Locust's sake: a run is always headless",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="local worker processes (default: CPU count)",
    )
    parser.add_argument(
        "--with-agent",
        action="store_true",
        help="start the reference agent simulator and aim the callers at it",
    )
    parser.add_argument(
        "--agent-args",
        default="",
        help='options for the agent, e.g. "--latency-ms 800" (see `agent -h`)',
    )
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument(
        "--csv", metavar="PREFIX", help="Locust CSV prefix (default: REPORTS_DIR/locust)"
    )
    parser.add_argument(
        "--html", metavar="FILE", help="Locust HTML report (default: REPORTS_DIR/locust.html)"
    )
    parser.add_argument(
        "--summary-json", metavar="FILE", help="summary JSON (default: REPORTS_DIR/summary.json)"
    )
    parser.add_argument("--slo", metavar="YAML", type=Path, help="SLO overrides")
    parser.add_argument(
        "--expect-workers-timeout",
        type=int,
        default=60,
        help="seconds to wait for the workers to connect (default 60)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=9646,
        help="master's Prometheus /metrics port (0: off; default 9646)",
    )
    parser.add_argument("--locust-args", default="", help="extra options for the master")
    add_baseline_arguments(parser)
    add_knob_arguments(parser)
    parser.set_defaults(handler=run)


def _start_agent(
    args: argparse.Namespace, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "loadtest", "agent", "--host", "127.0.0.1",
               "--port", str(port), *shlex.split(args.agent_args)]  # fmt: skip
    agent = spawn_child(command, env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise LoadtestError(f"the agent simulator exited with code {agent.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return agent, f"ws://127.0.0.1:{port}{AGENT_PATH}"
        except OSError:
            time.sleep(0.1)
    agent.terminate()
    raise LoadtestError("the agent simulator did not become healthy within 30 s")


class _Interrupted(BaseException):
    """A signal arrived (raised once, from the handler, wherever the run was waiting)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT/SIGTERM while the run lasts: the first interrupts, a second asks for haste."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.hurry = False
        self.armed = True  # False once the run is winding down: a signal then only hurries it
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None and self.armed:
            self.signum = signum
            raise _Interrupted(signum)
        self.hurry = True


def _reports_paths(args: argparse.Namespace) -> tuple[Path, str, str, str]:
    """The reports folder and the summary, CSV prefix and HTML paths; each folder checked."""
    reports: Path = args.reports_dir
    check_reports_dir(reports)
    summary = str(args.summary_json or reports / "summary.json")
    csv = str(args.csv or reports / "locust")
    html = str(args.html or reports / "locust.html")
    for flag, value in (("--summary-json", summary), ("--csv", csv), ("--html", html)):
        if Path(value).parent != reports:
            check_reports_dir(Path(value).parent, flag=f"the folder of {flag}")
    return reports, summary, csv, html


def _wait(process: subprocess.Popen[bytes], timeout_s: float, signals: _Signals) -> bool:
    """Wait up to ``timeout_s`` for ``process``; ``False`` if it still runs (or on haste)."""
    deadline = time.monotonic() + timeout_s
    while not signals.hurry and time.monotonic() < deadline:
        try:
            process.wait(timeout=0.1)
            return True
        except subprocess.TimeoutExpired:
            continue
    return process.poll() is not None


def _stop_on_signal(
    master: subprocess.Popen[bytes] | None,
    children: list[subprocess.Popen[bytes]],
    signals: _Signals,
) -> None:
    """The master first (it gathers the last measurements and writes the reports), then the
    workers it told to quit, then whatever is left (the agent)."""
    if master is not None and master.poll() is None:
        master.send_signal(signal.SIGINT)
        if not _wait(master, STOP_GRACE_S, signals):
            master.kill()
    workers = [c for c in children if c is not master]
    deadline = time.monotonic() + _WORKER_GRACE_S
    for child in workers:
        if not _wait(child, max(0.0, deadline - time.monotonic()), signals):
            child.send_signal(signal.SIGTERM)
    stop_processes(children, grace_s=0.5 if signals.hurry else 2.0)


def _written_since(path: str, since: float) -> bool:
    """``path`` was written at or after ``since`` (epoch seconds: an older file is another
    run's)."""
    try:
        return Path(path).stat().st_mtime >= since
    except OSError:
        return False


def _finish_report(summary: str, since: float) -> str | None:
    """The HTML report beside the summary JSON this run wrote (see :func:`_written_since`):
    after a signal or a killed master, in case the master could not write it, and after a
    comparison with a baseline, which the summary now holds; its path or None."""
    if not _written_since(summary, since):
        return None
    try:
        return str(write_report(Path(summary), Path(summary).with_suffix(".html")))
    except LoadtestError as exc:
        print(f"voice-loadtest: error: {exc}", file=sys.stderr)
        return None


def _locust_arguments(args: argparse.Namespace) -> list[str]:
    """``--locust-args`` split as a shell would."""
    try:
        return shlex.split(args.locust_args)
    except ValueError as exc:
        raise ConfigError(f"--locust-args {args.locust_args!r}: {exc}") from None


def _locust_host(locust_args: list[str]) -> str | None:
    """The target Locust itself would find: ``--host`` in ``--locust-args``, ``LOCUST_HOST``
    or a Locust config file (``locust.conf``, ``--config``…)."""
    from locust.argument_parser import get_parser

    options, _ = get_parser().parse_known_args(locust_args)
    host: str | None = options.host
    return host


def _locust_load(args: argparse.Namespace) -> list[str]:
    """``-u/-r/-t`` for the master: only those given on this command line."""
    given = (("-u", args.users), ("-r", args.spawn_rate), ("-t", args.run_time))
    return [item for flag, value in given if value is not None for item in (flag, str(value))]


def run(args: argparse.Namespace) -> int:
    """Run the whole local distributed test; returns the master's exit code (the verdict)."""
    if args.workers < 1 or (args.users is not None and args.users < 1):
        raise ConfigError("--workers and --users must be >= 1")
    if args.spawn_rate is not None and args.spawn_rate <= 0:
        raise ConfigError("--spawn-rate must be > 0")
    baseline = load_baseline(args)  # checked now: a bad file or rule must not cost a run
    env = knob_environment(args, dict(os.environ))
    locust_args = _locust_arguments(args)
    settings = parse_settings(env)  # a bad setting stops the run before any process starts
    audio = AudioLibrary.load(settings).cache  # so does an audio cache the workers can't use
    if not (args.with_agent or settings.ws_url or _locust_host(locust_args)):
        raise ConfigError(
            "no target: set WS_URL, pass --ws-url ws://HOST/PATH, or --with-agent for the "
            "reference agent"
        )
    reports, summary, csv, html = _reports_paths(args)
    if audio is not None:
        print(f"audio: {audio.line()}", flush=True)
    started = time.time() - 1.0  # file times may be coarser than the clock
    children: list[subprocess.Popen[bytes]] = []
    master_process: subprocess.Popen[bytes] | None = None
    with _Signals() as signals:
        try:
            if args.with_agent:
                agent, url = _start_agent(args, env)
                children.append(agent)
                env["WS_URL"] = url
                settings = settings.with_url(url)
            if not settings.ws_url and env.get("LOCUST_HOST"):
                settings = settings.with_url(env["LOCUST_HOST"])
            if settings.ws_url and settings.probe:
                probe(settings, cache_rate(settings.pcm_dir))
                env[PROBED_ENV] = "1"  # placed here: the master must not probe again
            # else the target is in Locust's own options (a config file, --locust-args):
            # the master finds it and probes it.
            port = free_port()
            master = [
                sys.executable, "-m", "loadtest.runtime.locust_main", "--master", "--headless",
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "--expect-workers", str(args.workers),
                "--expect-workers-max-wait", str(args.expect_workers_timeout),
                "--enable-rebalancing", *_locust_load(args), "--stop-timeout", "10",
                "--csv", csv, "--locust-html", html, "--summary-json", summary,
                *(["--host", settings.ws_url] if settings.ws_url else []),
                "--metrics-port", str(args.metrics_port), "--metrics-host", "127.0.0.1",
                *(["--slo-file", str(args.slo)] if args.slo else []),
                *locust_args,
            ]  # fmt: skip
            worker = [
                sys.executable, "-m", "loadtest.runtime.locust_main", "--worker",
                "--master-host", "127.0.0.1", "--master-port", str(port), "--metrics-port", "0",
            ]  # fmt: skip
            master_process = spawn_child(master, env)
            children.append(master_process)
            children += [spawn_child(worker, env) for _ in range(args.workers)]
            code = master_process.wait()
            signals.armed = False
            stop_processes(children)
            if code < 0:
                name = signal.Signals(-code).name
                print(
                    f"voice-loadtest: error: the Locust master was killed ({name}) before the run "
                    f"ended; partial reports, if any, are in {reports}",
                    file=sys.stderr,
                )
                _finish_report(summary, started)
                return 2
            if baseline is not None and _written_since(summary, started):
                code = apply_baseline(baseline, Path(summary), code)
                _finish_report(summary, started)  # the report again, with the comparison
            return code  # the master wrote summary.json and summary.html
        except _Interrupted as interrupted:
            name = signal.Signals(interrupted.signum).name
            print(
                f"voice-loadtest: {name}: ending the calls and writing the partial reports…",
                file=sys.stderr,
                flush=True,
            )
            _stop_on_signal(master_process, children, signals)
            report = _finish_report(summary, started)
            written = f"{summary}, {report}" if report else "none"
            print(
                f"voice-loadtest: stopped by signal ({name}); partial reports: {written}",
                file=sys.stderr,
                flush=True,
            )
            return 128 + interrupted.signum
        finally:
            signals.armed = False
            stop_processes(children, grace_s=0.5 if signals.hurry else 5)
