"""One measurement window inside the benchmark's caller process (edge: reads /proc, clocks).

:meth:`StepWindow.begin` drops what the callers recorded so far and notes the process CPU
time; :func:`window_result` turns what was recorded since into one step's figures. The frame
count of a window is the number of lateness samples: the caller records one per frame sent.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from typing import Any

from loadtest.metrics.histogram import Histogram
from loadtest.metrics.voice_stats import VoiceStats

__all__ = [
    "GcPauses",
    "StepWindow",
    "agent_cpu_s",
    "cpu_seconds",
    "cpu_ticks",
    "process_cpu_s",
    "rss_kb",
    "steal_percent",
    "window_result",
]


def cpu_seconds() -> tuple[float, float]:
    """User and system CPU time of this process (all threads), in seconds."""
    times = os.times()
    return times.user, times.system


def cpu_ticks(cpus: set[int] | None = None) -> tuple[int, int] | None:
    """Clock ticks the hypervisor stole from ``cpus`` (all when ``None``) and all their ticks,
    from ``/proc/stat`` (``None`` where it cannot be read). On a virtual machine the host may
    run other guests on this one's CPUs: a step's timing then measures that, not the caller."""
    names = {"cpu"} if cpus is None else {f"cpu{n}" for n in cpus}
    stolen = total = 0
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                fields = line.split()
                if fields and fields[0] in names:
                    ticks = [int(x) for x in fields[1:9]]  # user … steal (guest is in user)
                    stolen += ticks[7] if len(ticks) > 7 else 0
                    total += sum(ticks)
    except (OSError, ValueError):
        return None
    return (stolen, total) if total else None


def steal_percent(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Percent of the CPUs' time the hypervisor took between two :func:`cpu_ticks` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]) * 100, 1)


def rss_kb() -> int:
    """Resident set size of this process in KiB (``VmRSS``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (``/proc/*/stat``)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    return found


def agent_cpu_s(pid: int | None) -> tuple[float, int] | None:
    """CPU seconds of the agent ``pid`` and its child processes, and how many processes serve:
    with ``--processes N`` the simulator forks N processes that serve while the parent waits."""
    own = process_cpu_s(pid)
    if pid is None or own is None:
        return None
    children = _children(pid)
    return own + sum(process_cpu_s(child) or 0.0 for child in children), max(1, len(children))


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of another process (``/proc/PID/stat``), if readable."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcPauses:
    """The cyclic collector's passes in this process and how long each held the event loop
    (``gc.callbacks``): a full pass over many live objects is a pause no caller can hide."""

    def __init__(self) -> None:
        self._started_ns = 0
        self._passes = [0, 0, 0]
        self._worst_ns = self._total_ns = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started_ns = time.monotonic_ns()
            return
        took_ns = time.monotonic_ns() - self._started_ns
        self._passes[info["generation"]] += 1
        self._total_ns += took_ns
        self._worst_ns = max(self._worst_ns, took_ns)

    def take(self) -> dict[str, Any]:
        """Passes per generation, the longest and the total pause (ms) since the last take."""
        out = {
            "passes": list(self._passes),
            "max_ms": round(self._worst_ns / 1e6, 2),
            "total_ms": round(self._total_ns / 1e6, 1),
        }
        self._passes = [0, 0, 0]
        self._worst_ns = self._total_ns = 0
        return out


@dataclass(frozen=True, slots=True)
class StepWindow:
    started_ns: int
    user_s: float
    system_s: float
    agent_pid: int | None = None
    agent_cpu: tuple[float, int] | None = None  # agent_cpu_s
    ticks: tuple[int, int] | None = None  # this process's CPUs (cpu_ticks)

    @classmethod
    def begin(cls, stats: VoiceStats, agent_pid: int | None = None) -> StepWindow:
        stats.take_delta()  # what the ramp recorded is not part of the window
        user_s, system_s = cpu_seconds()
        return cls(
            started_ns=time.monotonic_ns(),
            user_s=user_s,
            system_s=system_s,
            agent_pid=agent_pid,
            agent_cpu=agent_cpu_s(agent_pid),
            ticks=cpu_ticks(os.sched_getaffinity(0)),
        )


def _q(histogram: Histogram) -> dict[str, float | None]:
    p = histogram.summary()
    return {"p50": p.p50, "p99": p.p99, "max": p.max}


def window_result(
    window: StepWindow,
    stats: VoiceStats,
    *,
    callers: int,
    chunk_ms: int,
    gc_pauses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The figures of one step, JSON-ready.

    ``frames`` were sent in the window, ``frames_target`` is what ``callers`` real-time streams
    send in as long; ``cpu_percent`` is of one core.
    """
    elapsed_s = (time.monotonic_ns() - window.started_ns) / 1e9
    user_s, system_s = cpu_seconds()
    user_s -= window.user_s
    system_s -= window.system_s
    cpu_s = user_s + system_s
    agent_now = agent_cpu_s(window.agent_pid)
    agent_percent = (  # of one core per serving process: 100 is every one of them busy
        None
        if agent_now is None or window.agent_cpu is None
        else round((agent_now[0] - window.agent_cpu[0]) / elapsed_s / agent_now[1] * 100, 1)
    )
    delta = VoiceStats()
    delta.merge(stats.take_delta())
    lateness = delta.histograms["frame_lateness_ms"]
    target = callers * elapsed_s * 1000 / chunk_ms
    ttfb = delta.histograms["ttfb_ms"].summary()
    return {
        "event": "step",
        "callers": callers,
        "window_s": round(elapsed_s, 3),
        "started_ns": window.started_ns,
        "ended_ns": window.started_ns + round(elapsed_s * 1e9),
        "cpu_s": round(cpu_s, 3),
        "cpu_percent": round(cpu_s / elapsed_s * 100, 1),
        "cpu_system_percent": round(system_s / elapsed_s * 100, 1),
        "agent_cpu_percent": agent_percent,
        "steal_percent": steal_percent(window.ticks, cpu_ticks(os.sched_getaffinity(0))),
        "frames": lateness.count,
        "frames_target": round(target),
        "frame_rate_ratio": round(lateness.count / target, 4) if target else None,
        "lateness_ms": _q(lateness),
        "lateness_hist": lateness.serialize(),
        "receive_lag_ms": _q(delta.histograms["receive_lag_ms"]),
        "receive_lag_hist": delta.histograms["receive_lag_ms"].serialize(),
        "rss_kb": rss_kb(),
        "ttfb_ms": {"count": ttfb.count, "p50": ttfb.p50, "p99": ttfb.p99},
        "turns": delta.total("turns"),
        "turns_ok": delta.total("turns_ok"),
        "calls_connected": delta.total("calls_connected"),
        "errors": dict(delta.errors),
        "gc": gc_pauses,
    }
