"""Master scale, simulated (edge: starts a real Locust master and the simulated workers).

Per step, one real master (``locust -f loadtest/locustfile.py --master --headless``, the
harness plugin loaded, ``/metrics`` on) pinned to one CPU, and one process of simulated
workers (:mod:`bench.mastersim`) on another: N workers speaking Locust's worker
protocol at its real cadence, each reporting for C callers. The step measures the master's
CPU while the workers report, how far behind its message loop is (heartbeat round trip: the
master echoes a heartbeat after the messages queued before it), ``/metrics`` scrape time and
size, how long the master takes to show every report after the last one was sent, and
whether the summary the master writes at the end counts exactly what the workers sent.

A step is *carried* when the summary is exact, the heartbeat round trip p99 is at most
:data:`MAX_ROUND_TRIP_MS` (a master further behind holds a growing backlog of reports) and
the master uses at most :data:`MAX_MASTER_CPU_PERCENT` of its core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import loadtest
from bench.measure import process_cpu_s
from bench.procs import bench_env, free_port, start_agent, stop
from loadtest.metrics.histogram import Histogram

__all__ = ["MAX_MASTER_CPU_PERCENT", "MAX_ROUND_TRIP_MS", "master_carries", "master_section"]

MAX_ROUND_TRIP_MS = 1000.0
"""The heartbeat interval: a master that answers later than this is falling behind."""
MAX_MASTER_CPU_PERCENT = 80.0
_SETTLE_TIMEOUT_S = 60.0
_DRAIN_TIMEOUT_S = 30.0
_SCRAPE_TIMEOUT_S = 30.0
_COUNTS = ("turns", "turns_ok", "barge_attempts", "frames_sent", "frames_received")


def master_carries(step: dict[str, Any]) -> bool:
    """Exact summary, heartbeat round trip p99 ≤ 1 s and master CPU ≤ 80 % (see module)."""
    trip = (step.get("heartbeat_round_trip_ms") or {}).get("p99")
    cpu = step.get("master_cpu_percent")
    return bool(
        step.get("summary_exact")
        and trip is not None
        and trip <= MAX_ROUND_TRIP_MS
        and cpu is not None
        and cpu <= MAX_MASTER_CPU_PERCENT
    )


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} ms"


def _pin(cpu: int | None) -> Any:
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def _scrape(url: str) -> tuple[float, int, str]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as response:
            body = response.read()
    except TimeoutError as exc:
        raise RuntimeError(f"/metrics took over {_SCRAPE_TIMEOUT_S:g} s to answer") from exc
    return (time.perf_counter() - started) * 1000, len(body), body.decode()


def _counter(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def _step(
    workers: int, callers: int, seconds: float, target: str, cpus: list[int], work: Path
) -> dict[str, Any]:
    zmq_port, metrics_port = free_port(), free_port()
    summary_path = work / f"master-{workers}-summary.json"
    locustfile = Path(loadtest.__file__).parent / "locustfile.py"
    users = workers * callers
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--master", "--headless",
        "--expect-workers", str(workers), "-u", str(users), "-r", str(users),
        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(zmq_port),
        "--host", target, "--metrics-host", "127.0.0.1", "--metrics-port", str(metrics_port),
        "--summary-json", str(summary_path), "--loglevel", "WARNING",
    ]  # fmt: skip
    master_cpu = cpus[0] if len(cpus) >= 2 else None
    sims_cpu = cpus[1] if len(cpus) >= 2 else None
    with (work / f"master-{workers}.log").open("ab") as log:
        master = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_pin(master_cpu)
        )
    sims: subprocess.Popen[str] | None = None
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        _wait_http(metrics, master)
        sims = subprocess.Popen(
            [sys.executable, "-m", "bench.mastersim", "--master",
             f"127.0.0.1:{zmq_port}", "--workers", str(workers), "--callers", str(callers),
             "--seconds", str(seconds)],
            stdout=subprocess.PIPE, stderr=(work / f"mastersim-{workers}.log").open("ab"),
            text=True, preexec_fn=_pin(sims_cpu), env=bench_env(),
        )  # fmt: skip
        _wait_users(metrics, users, master, sims)
        cpu_before, started = process_cpu_s(master.pid), time.monotonic()
        scrape_ms, sizes = Histogram(0.1), []
        while time.monotonic() - started < seconds:
            ms, size, _ = _scrape(metrics)
            scrape_ms.record(ms)
            sizes.append(size)
            time.sleep(1.0)
        cpu_after, elapsed = process_cpu_s(master.pid), time.monotonic() - started
        assert sims.stdout is not None
        line = sims.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulated workers ended early (see {work})")
        sent = json.loads(line)
        drain_s = _wait_counter(metrics, sent["sent"]["counters"].get("frames_sent", 0))
        stop([master], grace_s=60)
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    finally:
        stop([p for p in (master, sims) if p is not None], grace_s=30)
    mismatches = _compare(summary, sent["sent"])
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = round((cpu_after - cpu_before) / elapsed * 100, 1)
    scrape = scrape_ms.summary()
    step = {
        "workers": workers,
        "callers": users,
        "reports": sent["sent"]["reports"],
        "report_bytes": sent["report_bytes"],
        "master_cpu_percent": cpu,
        "heartbeat_round_trip_ms": sent["heartbeat_round_trip_ms"],
        "scrape_ms": {"p50": scrape.p50, "max": scrape.max},
        "scrape_bytes": max(sizes, default=0),
        "drain_s": drain_s,
        "summary_exact": not mismatches and bool(summary),
        "mismatches": mismatches,
    }
    step["carried"] = master_carries(step)
    return step


def _wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the master exited with {process.returncode}")
        try:
            _scrape(url)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the master's /metrics did not come up")


def _wait_users(
    url: str, users: int, process: subprocess.Popen[bytes], sims: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + _SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the master exited with {process.returncode}")
        if sims.poll() is not None:
            raise RuntimeError(f"the simulated workers exited with {sims.returncode}")
        if _counter(_scrape(url)[2], "voice_loadtest_users") == users:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the master did not reach {users} callers")


def _wait_counter(url: str, expected: int) -> float | None:
    """Seconds until ``/metrics`` shows every frame the workers reported (``None``: never)."""
    started = time.monotonic()
    while time.monotonic() - started < _DRAIN_TIMEOUT_S:
        if _counter(_scrape(url)[2], "voice_loadtest_frames_sent_total") == expected:
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return None


def _compare(summary: dict[str, Any], sent: dict[str, Any]) -> list[str]:
    """What the master's summary counts differently from what the workers sent."""
    if not summary:
        return ["no summary written"]
    out = []
    counts = summary.get("counts", {})
    for name in _COUNTS:
        want, got = sent["counters"].get(name, 0), counts.get(name)
        if got != want:
            out.append(f"{name}: summary {got}, sent {want}")
    failures = counts.get("failures", {})
    if failures != sent["errors"]:
        out.append(f"failures: summary {failures}, sent {sent['errors']}")
    ttfb = summary.get("metrics", {}).get("ttfb_ms", {}).get("count")
    if ttfb != sent["ttfb"]:
        out.append(f"ttfb samples: summary {ttfb}, sent {sent['ttfb']}")
    return out


def master_section(
    steps: Sequence[int], callers_per_worker: int, seconds: float, cpus: list[int], work: Path
) -> dict[str, Any]:
    """Step the number of simulated workers up until two steps in a row are not carried."""
    from bench.sections import AGENT_ARGS, say

    agent = start_agent(
        cpus=None, ground_truth=None, log=work / "agent-master.log", args=AGENT_ARGS
    )  # fmt: skip  (the master probes its target once)
    results: list[dict[str, Any]] = []
    try:
        failing = 0
        for workers in steps:
            try:
                step = _step(workers, callers_per_worker, seconds, agent.url, cpus, work)
            except (RuntimeError, OSError, ValueError) as exc:  # the master gave up: a result
                step = {"workers": workers, "callers": workers * callers_per_worker,
                        "error": str(exc), "carried": False}  # fmt: skip
                say(f"master {workers:4d} workers: {exc}")
                results.append(step)
                failing += 1
                if failing >= 2:
                    break
                continue
            results.append(step)
            trip, scrape = step["heartbeat_round_trip_ms"], step["scrape_ms"]
            say(
                f"master {workers:4d} workers {step['callers']:6d} callers  cpu "
                f"{step['master_cpu_percent']}%  heartbeat p99 {_ms(trip['p99'])}  scrape max "
                f"{_ms(scrape['max'])} {step['scrape_bytes']} B  drain {step['drain_s']} s  "
                f"exact {step['summary_exact']}  {'carried' if step['carried'] else 'FAILS'}"
            )
            failing = 0 if step["carried"] else failing + 1
            if failing >= 2:
                break
    finally:
        stop([agent.process])
    carried = [s for s in results if s["carried"]]
    best = max(carried, key=lambda s: s["workers"], default=None)
    return {
        "callers_per_worker": callers_per_worker,
        "report_window_s": seconds,
        "master_cpus": cpus[:1] if len(cpus) >= 2 else "unpinned",
        "steps": results,
        "max_workers": best["workers"] if best else 0,
        "max_callers": best["callers"] if best else 0,
    }
