"""What the benchmark's raw figures mean (core: pure functions of JSON-ready data).

* :func:`step_holds` / :func:`capacity` — a step *holds* when frame lateness p99 ≤ 5 ms, the
  realised frame rate is within 1 % of real time and the event loop's receive lag p99 ≤ 5 ms
  (a worker that sends on time but reads late inflates every TTFB it measures); capacity is
  the largest caller count that holds (only counting up to the first step that does not). A
  failing step whose worker CPU the hypervisor took more than 2 % of is *not judged*
  (:func:`step_judged`): it neither holds nor ends the count.
* :func:`linear_fit` — least squares, for CPU and memory per caller.
* :func:`pool_steps` — several workers' step records into one (histograms merged exactly).
* :func:`match_turns` — the harness's per-turn log against the agent's ground truth (same
  connection id, same turn; by time on the connection when the turn numbering disagrees) and
  the error of every TTFB and barge-in measurement; :func:`error_stats` summarises them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtest.metrics.histogram import Histogram

__all__ = [
    "MAX_P99_MS",
    "MAX_RECEIVE_LAG_P99_MS",
    "MAX_STEAL_PERCENT",
    "RATE_TOLERANCE",
    "Matched",
    "capacity",
    "cpu_ms_per_caller_s",
    "error_stats",
    "linear_fit",
    "match_turns",
    "pool_steps",
    "quantiles",
    "step_holds",
    "step_judged",
]

MAX_P99_MS = 5.0
"""A step holds when frame lateness p99 is at most this…"""
RATE_TOLERANCE = 0.01
"""…the realised frame rate is within this fraction of real time…"""
MAX_RECEIVE_LAG_P99_MS = 5.0
"""…and the event loop's receive lag p99 is at most this."""
MAX_STEAL_PERCENT = 2.0
"""A failing step is not judged when the hypervisor took more than this share of the worker
CPU's time in its window (and a full run refuses to start above it): each slice taken is a
pause of tens of milliseconds that no caller caused, and 1 % of a window's frames decide p99."""
_INDEX_MATCH_WINDOW_NS = 1_000_000_000  # a same-numbered agent turn must be this close in time


def step_holds(step: Mapping[str, Any]) -> bool:
    """Lateness p99 ≤ :data:`MAX_P99_MS`, realised rate within :data:`RATE_TOLERANCE` and
    receive lag p99 ≤ :data:`MAX_RECEIVE_LAG_P99_MS` (a pooled step: its busiest worker's
    A step without receive-lag figures is judged on the first two."""
    p99 = (step.get("lateness_ms") or {}).get("p99")
    ratio = step.get("frame_rate_ratio")
    if p99 is None or ratio is None:
        return False
    lag = (step.get("receive_lag_ms") or {}).get("p99")
    lag_ok = lag is None or lag <= MAX_RECEIVE_LAG_P99_MS
    return bool(p99 <= MAX_P99_MS and abs(ratio - 1.0) <= RATE_TOLERANCE + 1e-9 and lag_ok)


def step_judged(step: Mapping[str, Any]) -> bool:
    """False for a step that fails with more than :data:`MAX_STEAL_PERCENT` of its worker
    CPU's time stolen (a step that holds anyway is judged: steal only makes it harder)."""
    steal = step.get("steal_percent")
    return step_holds(step) or steal is None or steal <= MAX_STEAL_PERCENT


def capacity(steps: Sequence[Mapping[str, Any]]) -> int:
    """The largest caller count that holds, counting steps in order until one does not
    (steps not judged are passed over)."""
    best = 0
    for step in steps:
        if not step_judged(step):
            continue
        if not step_holds(step):
            break
        best = max(best, int(step["callers"]))
    return best


def cpu_ms_per_caller_s(cpu_percent: float, callers: float) -> float:
    """CPU time each caller takes per second of the run, from a share of one core."""
    return cpu_percent * 10 / callers  # 1 % of a core for one second is 10 ms of CPU


def linear_fit(points: Iterable[tuple[float, float]]) -> tuple[float, float] | None:
    """``(slope, intercept)`` of the least-squares line; ``None`` with < 2 distinct x."""
    xs, ys = [], []
    for x, y in points:
        xs.append(float(x))
        ys.append(float(y))
    if len(set(xs)) < 2:
        return None
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return slope, my - slope * mx


def _summary(histogram: Histogram) -> dict[str, float | None]:
    p = histogram.summary()
    return {"p50": p.p50, "p99": p.p99, "max": p.max}


def pool_steps(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One step record for several workers that ran the same step at the same time.

    Callers, frames and targets add up; lateness and receive-lag percentiles come from the
    merged histograms (all samples pooled); CPU is the busiest worker's.
    """
    lateness, lag = Histogram(0.05), Histogram(0.05)
    for part in parts:
        lateness.merge(part["lateness_hist"])
        if "receive_lag_hist" in part:
            lag.merge(part["receive_lag_hist"])
    frames = sum(int(p["frames"]) for p in parts)
    target = sum(int(p["frames_target"]) for p in parts)
    return {
        "callers": sum(int(p["callers"]) for p in parts),
        "workers": len(parts),
        "frames": frames,
        "frames_target": target,
        "frame_rate_ratio": round(frames / target, 4) if target else None,
        "lateness_ms": _summary(lateness),
        "cpu_percent_max": max(float(p["cpu_percent"]) for p in parts),
        "agent_cpu_percent": parts[0].get("agent_cpu_percent"),
        "receive_lag_ms": _summary(lag) if lag.count else None,
    }


# ---------------------------------------------------------------------- accuracy


@dataclass
class Matched:
    """Errors (harness − ground truth, ms) of the matched measurements, and the tally."""

    ttfb_errors_ms: list[float] = field(default_factory=list)
    ttfb_send_transit_ms: list[float] = field(default_factory=list)  # agent rx − caller EOS tx
    ttfb_recv_transit_ms: list[float] = field(default_factory=list)  # caller rx − agent tx
    barge_errors_ms: list[float] = field(default_factory=list)
    by_index: int = 0
    by_time: int = 0
    unmatched: int = 0


def _nearest(
    candidates: Sequence[Mapping[str, Any]], key: str, instant: int, window_ns: int
) -> Mapping[str, Any] | None:
    best, best_gap = None, window_ns
    for record in candidates:
        value = record.get(key)
        if value is None:
            continue
        gap = abs(int(value) - instant)
        if gap <= best_gap:
            best, best_gap = record, gap
    return best


def match_turns(
    harness: Iterable[Mapping[str, Any]],
    truth: Iterable[Mapping[str, Any]],
    *,
    window: tuple[int, int] | None = None,
) -> Matched:
    """Match each harness turn (TTFB and barge-in) to the agent's record of it.

    ``harness``: turn-log lines (:mod:`loadtest.runtime.caller`); ``truth``: the agent's
    ground-truth lines. A TTFB is matched to the agent's ``reply`` record with the same
    connection id and turn index when its last speech frame was received within 1 s of the
    harness's end of speech, else to the record on that connection nearest in time. A barge-in
    is matched to the agent's record whose barge speech arrival is nearest to the harness's
    first barge speech frame. ``window`` keeps only measurements made wholly inside
    ``[start_ns, end_ns]``: end of speech to the first reply frame read (barge-in: first barge
    speech frame to StopAudio read). One that straddles the end was finished while the
    benchmark was already ramping to the next step, a load that is not this step's.
    """
    replies: dict[str, list[Mapping[str, Any]]] = {}
    for line in truth:
        if line.get("kind") == "reply":
            replies.setdefault(str(line["connection_id"]), []).append(line)
    by_turn = {(conn, r.get("turn_index")): r for conn, records in replies.items() for r in records}
    out = Matched()
    for turn in harness:
        conn = str(turn["connection_id"])
        candidates = replies.get(conn, [])
        eos, ttfb = turn.get("eos_ns"), turn.get("ttfb_ms")
        record: Mapping[str, Any] | None
        if eos is not None and ttfb is not None and _inside(int(eos), window, float(ttfb)):
            record = by_turn.get((conn, turn.get("turn_index")))
            rx = None if record is None else record.get("last_speech_rx_ns")
            if rx is not None and abs(int(rx) - int(eos)) <= _INDEX_MATCH_WINDOW_NS:
                out.by_index += 1
            else:
                record = _nearest(candidates, "last_speech_rx_ns", int(eos), _INDEX_MATCH_WINDOW_NS)
                if record is not None:
                    out.by_time += 1
            if record is None or record.get("response_first_tx_ns") is None:
                out.unmatched += 1
            else:
                rx_ns, tx_ns = int(record["last_speech_rx_ns"]), int(record["response_first_tx_ns"])
                out.ttfb_errors_ms.append(float(ttfb) - (tx_ns - rx_ns) / 1e6)
                out.ttfb_send_transit_ms.append((rx_ns - int(eos)) / 1e6)
                first = turn.get("answer_first_ns")
                if first is not None:
                    out.ttfb_recv_transit_ms.append((int(first) - tx_ns) / 1e6)
        barge = turn.get("barge") or {}
        speech, latency = barge.get("speech_ns"), barge.get("latency_ms")
        if barge.get("outcome") == "stopped" and speech is not None and latency is not None:
            if not _inside(int(speech), window, float(latency)):
                continue
            record = _nearest(candidates, "barge_speech_rx_ns", int(speech), _INDEX_MATCH_WINDOW_NS)
            if record is None or record.get("stop_tx_ns") is None:
                out.unmatched += 1
                continue
            truth_ms = (int(record["stop_tx_ns"]) - int(record["barge_speech_rx_ns"])) / 1e6
            out.barge_errors_ms.append(float(latency) - truth_ms)
    return out


def _inside(start_ns: int, window: tuple[int, int] | None, lasted_ms: float) -> bool:
    """Whether a measurement from ``start_ns`` lasting ``lasted_ms`` lies inside ``window``."""
    end_ns = start_ns + round(lasted_ms * 1_000_000)
    return window is None or (window[0] <= start_ns and end_ns <= window[1])


def quantiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p99, max and min of ``values`` (nearest-rank), in their unit."""
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None, "min": None}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))]

    return {
        "count": n,
        "p50": round(rank(0.50), 3),
        "p99": round(rank(0.99), 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


def error_stats(matched: Matched) -> dict[str, Any]:
    """The accuracy figures of one load level, JSON-ready (ms)."""
    return {
        "ttfb_error_ms": quantiles(matched.ttfb_errors_ms),
        "ttfb_abs_error_ms": quantiles([abs(v) for v in matched.ttfb_errors_ms]),
        "caller_to_agent_ms": quantiles(matched.ttfb_send_transit_ms),
        "agent_to_caller_ms": quantiles(matched.ttfb_recv_transit_ms),
        "barge_in_error_ms": quantiles(matched.barge_errors_ms),
        "barge_in_abs_error_ms": quantiles([abs(v) for v in matched.barge_errors_ms]),
        "matched_by_index": matched.by_index,
        "matched_by_time": matched.by_time,
        "unmatched": matched.unmatched,
    }
