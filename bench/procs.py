"""The benchmark's processes (edge): the agent simulator, caller workers, the machine.

Every process is started here with its CPU affinity set before it runs any Python
(``preexec_fn``), tracked, and stopped by :func:`stop` (SIGTERM, then SIGKILL) — only the
processes this module started.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench.measure import cpu_ticks, steal_percent
from bench.tlsfiles import TlsFiles
from loadtest.errors import LoadtestError
from loadtest.procutil import free_port
from loadtest.procutil import stop_processes as stop

__all__ = [
    "AGENT_PATH",
    "REPO_ROOT",
    "Agent",
    "Worker",
    "bench_env",
    "free_port",
    "machine",
    "python_speed_swing",
    "start_agent",
    "start_worker",
    "steal_probe",
    "stop",
]

AGENT_PATH = "/api/v1/media/stream"
REPO_ROOT = Path(__file__).resolve().parents[1]
"""The clone the benchmark runs from: ``bench`` is not installed, only ``loadtest`` is."""


def bench_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this environment) with :data:`REPO_ROOT` first on ``PYTHONPATH``,
    so a child started as ``python -m bench.<module>`` finds the package from any folder."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def _pin(cpus: set[int] | None) -> Any:
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("gevent", "greenlet", "locust", "websocket-client", "websockets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def python_speed(iterations: int = 200_000) -> float:
    """Millions of iterations per second of a fixed interpreter workload (a call, dict and
    small-int work per iteration), best of three. A shared or virtualised machine's speed
    moves between runs; this reading, taken at the start and the end, lets two runs' figures
    be compared."""
    return round(iterations / min(_workload(iterations) for _ in range(3)) / 1e6, 2)


def python_speed_swing(seconds: float = 3.0, iterations: int = 20_000) -> list[float]:
    """The fixed workload of :func:`python_speed` in short blocks (a few ms each) for
    ``seconds``: the slowest, median and fastest block's speed (M iterations/s). A virtual
    CPU whose speed moves within a second (other guests on the same core) shows it here:
    a caller that keeps time must keep it through the slow stretches too."""
    speeds = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        speeds.append(iterations / _workload(iterations) / 1e6)
    speeds.sort()
    return [round(speeds[0], 2), round(speeds[len(speeds) // 2], 2), round(speeds[-1], 2)]


def _workload(iterations: int) -> float:
    """Seconds the fixed workload of ``iterations`` takes (a call, dict and small-int work)."""

    def step(counts: dict[int, int], i: int) -> int:
        counts[i & 255] = counts.get(i & 255, 0) + i
        return i * 3 + 1

    counts: dict[int, int] = {}
    started = time.perf_counter()
    for i in range(iterations):
        step(counts, i)
    return time.perf_counter() - started


_SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"


def steal_probe(cpus: Sequence[int], seconds: float = 3.0) -> float | None:
    """Percent of ``cpus``' time the hypervisor took while one process per CPU kept it busy.

    A virtual machine's host may run other guests on its CPUs, and often takes them only
    when the guest is busy, so an idle machine shows no steal and the load average never
    does; spinning every CPU asks the question the benchmark would."""
    before = cpu_ticks(set(cpus))
    spinners = [
        subprocess.Popen(
            [sys.executable, "-c", _SPIN.format(seconds=seconds)],
            preexec_fn=_pin({cpu}),
        )
        for cpu in cpus
    ]
    for spinner in spinners:
        spinner.wait()
    return steal_percent(before, cpu_ticks(set(cpus)))


def machine() -> dict[str, Any]:
    """What the figures were measured on (and how busy and how fast the machine was)."""
    return {
        "python_speed": python_speed(),
        "python_speed_swing": python_speed_swing(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "packages": _versions(),
    }


@dataclass
class Agent:
    process: subprocess.Popen[bytes]
    url: str
    ground_truth: Path | None


def start_agent(
    *,
    cpus: set[int] | None,
    ground_truth: Path | None,
    log: Path,
    args: Sequence[str] = (),
    tls: TlsFiles | None = None,
) -> Agent:
    """The reference agent on 127.0.0.1 and a free port, healthy, pinned to ``cpus``;
    serving wss:// with ``tls``'s certificate when given."""
    port = free_port()
    command = [
        sys.executable, "-m", "loadtest", "agent", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", *args,
        *(["--ground-truth", str(ground_truth)] if ground_truth else []),
        *(["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)] if tls else []),
    ]  # fmt: skip
    scheme, context = "", None
    if tls is not None:
        scheme, context = "s", ssl.create_default_context(cafile=str(tls.ca))
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=_pin(cpus)
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LoadtestError(f"the agent simulator exited with {process.returncode} (see {log})")
        try:
            health = f"http{scheme}://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(health, timeout=1, context=context):
                return Agent(process, f"ws{scheme}://127.0.0.1:{port}{AGENT_PATH}", ground_truth)
        except OSError:
            time.sleep(0.1)
    stop([process])
    raise LoadtestError("the agent simulator did not become healthy within 30 s")


@dataclass
class Worker:
    """One benchmark caller process (:mod:`bench.worker`) and its JSON lines."""

    process: subprocess.Popen[bytes]
    lines: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)

    def records(self, timeout_s: float) -> Iterator[dict[str, Any]]:
        """Its JSON lines as they come, until it exits (raises on a stall of ``timeout_s``)."""
        while True:
            try:
                record = self.lines.get(timeout=timeout_s)
            except queue.Empty:
                raise LoadtestError(
                    f"a benchmark worker said nothing for {timeout_s:.0f} s"
                ) from None
            if record is None:
                return
            yield record


def _pump(stream: IO[bytes], lines: queue.Queue[dict[str, Any] | None]) -> None:
    for raw in stream:
        text = raw.decode(errors="replace").strip()
        if text.startswith("{"):
            lines.put(json.loads(text))
    lines.put(None)


def start_worker(
    *,
    url: str,
    pcm_dir: Path,
    steps: Sequence[int],
    settle_s: float,
    step_s: float,
    cpus: set[int] | None,
    log: Path,
    turn_log: Path | None = None,
    agent_pid: int | None = None,
    ca_bundle: Path | None = None,
) -> Worker:
    """A caller worker stepping through ``steps`` (see :mod:`bench.worker`)."""
    command = [
        sys.executable, "-m", "bench.worker", "--url", url, "--pcm-dir", str(pcm_dir),
        "--steps", ",".join(str(s) for s in steps), "--settle-s", str(settle_s),
        "--step-s", str(step_s),
        *(["--agent-pid", str(agent_pid)] if agent_pid else []),
        *(["--turn-log", str(turn_log)] if turn_log is not None else []),
        *(["--ca-bundle", str(ca_bundle)] if ca_bundle is not None else []),
    ]  # fmt: skip
    env = bench_env()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=sink, env=env, preexec_fn=_pin(cpus)
        )
    worker = Worker(process)
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(process.stdout, worker.lines), daemon=True).start()
    return worker
