"""``voice-loadtest run``: a local distributed run in one command (edge: processes).

Starts (optionally) the reference agent, probes the target once, then one Locust master and
``--workers`` worker processes with rebalancing on, headless for ``--run-time``; the master
writes the CSV, HTML and summary JSON and prints the summary and SLO table. The exit code is
the SLO verdict (0 pass/warn, 1 fail, 2 invalid run or set-up error). With ``--baseline``
the run is compared with an earlier summary (``--fail-on`` gates on regressions) and the
comparison goes into the summary and the report. Ctrl-C stops every child cleanly.

The caller knobs (``WS_URL``, ``TURNS_PER_USER``, …) reach every process as environment
variables; flags given here override the inherited environment.
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

from loadtest.errors import ConfigError, LoadtestError, TargetUnreachable
from loadtest.metrics.compare_cli import add_baseline_arguments, apply_baseline, load_baseline
from loadtest.metrics.report_cli import write_report
from loadtest.procutil import free_port, stop_processes
from loadtest.runtime.transport import ConnectFailed, WebSocketTransport
from loadtest.settings import SETTINGS, CallerSettings, parse_settings

__all__ = ["add_run_arguments", "knob_environment", "probe", "run"]

LOCUSTFILE = Path(__file__).resolve().parent.parent / "locustfile.py"
AGENT_PATH = "/api/v1/media/stream"


def add_knob_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per caller knob (``--turns-per-user`` for ``TURNS_PER_USER``…)."""
    group = parser.add_argument_group("caller settings (each also an environment variable)")
    for knob in SETTINGS.values():
        group.add_argument(knob.option, dest=f"knob_{knob.env}", metavar=knob.env,
                           help=f"{knob.help} [${knob.env}, default {knob.default!r}]")  # fmt: skip


def knob_environment(args: argparse.Namespace, base: dict[str, str]) -> dict[str, str]:
    """``base`` with every knob flag that was given written as its environment variable."""
    env = dict(base)
    for knob in SETTINGS.values():
        value = getattr(args, f"knob_{knob.env}", None)
        if value is not None:
            env[knob.env] = str(value)
    return env


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", "-u", type=int, default=20, help="concurrent callers")
    parser.add_argument("--spawn-rate", "-r", type=float, default=5.0, help="callers started/s")
    parser.add_argument("--run-time", "-t", default="60s", help="e.g. 90s, 10m, 1h30m")
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


def probe(settings: CallerSettings, timeout_s: float = 5.0) -> None:
    """Open and close one connection to ``settings.ws_url``; raise LoadtestError if it fails."""
    transport = WebSocketTransport(settings)
    try:
        transport.connect(settings.ws_url, timeout_s)
    except ConnectFailed as exc:
        raise TargetUnreachable(
            f"cannot reach the agent at {settings.ws_url}: {exc.detail} [{exc.error}]; "
            "check WS_URL and that the agent is up (or use --with-agent)"
        ) from None
    transport.close()


def _start_agent(
    args: argparse.Namespace, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "loadtest", "agent", "--host", "127.0.0.1",
               "--port", str(port), *shlex.split(args.agent_args)]  # fmt: skip
    agent = subprocess.Popen(command, env=env)
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


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Run the whole local distributed test; returns the master's exit code (the verdict)."""
    if args.workers < 1 or args.users < 1 or args.spawn_rate <= 0:
        raise ConfigError("--workers and --users must be >= 1 and --spawn-rate > 0")
    baseline = load_baseline(args)  # checked now: a bad file or rule must not cost a run
    env = knob_environment(args, dict(os.environ))
    reports = args.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if args.with_agent:
            agent, url = _start_agent(args, env)
            children.append(agent)
            env["WS_URL"] = url
        settings = parse_settings(env)
        if not settings.ws_url:
            raise ConfigError("no target: set WS_URL / --ws-url, or use --with-agent")
        probe(settings)
        port = free_port()
        summary = args.summary_json or str(reports / "summary.json")
        master = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master", "--headless",
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", str(args.workers),
            "--expect-workers-max-wait", str(args.expect_workers_timeout),
            "--enable-rebalancing", "-u", str(args.users), "-r", str(args.spawn_rate),
            "-t", args.run_time, "--stop-timeout", "10",
            "--csv", args.csv or str(reports / "locust"),
            "--html", args.html or str(reports / "locust.html"),
            "--summary-json", summary, "--host", settings.ws_url,
            "--metrics-port", str(args.metrics_port), "--metrics-host", "127.0.0.1",
            *(["--slo-file", str(args.slo)] if args.slo else []),
            *shlex.split(args.locust_args),
        ]  # fmt: skip
        worker = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
            "--master-host", "127.0.0.1", "--master-port", str(port), "--metrics-port", "0",
        ]  # fmt: skip
        master_process = subprocess.Popen(master, env=env)
        children.append(master_process)
        children += [subprocess.Popen(worker, env=env) for _ in range(args.workers)]
        code = master_process.wait()
        stop_processes(children)
        if Path(summary).is_file():
            if baseline is not None:
                code = apply_baseline(baseline, Path(summary), code)
            report = write_report(Path(summary), Path(summary).with_suffix(".html"))
            print(f"report: {report}")
        return code
    except KeyboardInterrupt:
        print("voice-loadtest: stopping…", file=sys.stderr)
        stop_processes(children)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_processes(children, grace_s=5)
