"""Per-process voice measurements that merge across workers (core: pure data).

:class:`VoiceStats` holds one :class:`~loadtest.metrics.histogram.Histogram` per latency
(milliseconds), the counters, and the first and last wall-clock instant of events whose span
matters (``connect_failure``: the outage window). Histograms and counters are declared once
here: :data:`HISTOGRAMS` and :data:`COUNTERS` are what the recording side
(:mod:`loadtest.conversation.tally`) and the reading side (summary, exposition) agree on, and a
name that is not declared raises ``KeyError`` on either side instead of reading as 0.

A worker records into it, ships :meth:`take_delta` in Locust's ``report_to_master`` and
starts a fresh delta; the master :meth:`merge`\\ s each payload in ``worker_report``. Because
only deltas travel and buckets are fixed, the master's totals are exactly the sum of what
every worker recorded, including workers that joined late or have since gone (their last
report stays counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadtest.metrics.histogram import Histogram

__all__ = ["BY_SCENARIO", "COUNTERS", "HISTOGRAMS", "INBOUND_ANOMALIES", "Counter", "VoiceStats"]

HISTOGRAMS: Mapping[str, tuple[float, str]] = {
    "ttfb_ms": (1.0, "first agent audio after the caller's end of speech"),
    "barge_in_ms": (1.0, "agent stop signal (or end of audio) after barge speech began"),
    "greeting_ms": (1.0, "first greeting audio after the call connected"),
    "connect_ms": (1.0, "WebSocket upgrade time"),
    "turn_ms": (1.0, "first caller frame of a turn until the answer was heard"),
    "talk_over_ms": (1.0, "agent audio the caller still heard after barging in"),
    "agent_gap_ms": (1.0, "gaps between consecutive agent audio messages"),
    "frame_lateness_ms": (0.05, "caller frame send time minus its due time (harness health)"),
    "receive_lag_ms": (0.05, "receiver wake-up delay (harness health)"),
}
"""Histogram name → (bucket width in ms, meaning)."""

BY_SCENARIO = frozenset({"ttfb_ms", "barge_in_ms", "turn_ms"})
"""Histograms also kept per scenario (for the exporter's ``scenario`` label)."""

INBOUND_ANOMALIES: Mapping[str, str] = {
    "inbound_malformed": "agent messages that do not fit the protocol (bad JSON, stray binary)",
    "empty_audio": "agent audio messages that carry no audio",
    "stray_audio_frames": "agent audio outside the greeting, the answers and talk-over",
    "stray_stops": "agent stop signals outside a barge-in",
    "protocol_errors": "connections failed because the agent broke the WebSocket protocol",
}
"""Counters of what the caller noticed the agent doing wrong: name → meaning. Each is in the
summary's ``counts`` (0 when none), the HTML report and ``/metrics``."""


@dataclass(frozen=True, slots=True)
class Counter:
    """A declared counter: what it counts, and whether it is also kept per ``scenario``."""

    help: str
    by_scenario: bool = False


COUNTERS: Mapping[str, Counter] = {
    "calls": Counter("calls placed (one per caller conversation, connected or not)"),
    "calls_ended": Counter("calls over, connected or not (calls − calls_ended: in flight)"),
    "connect_attempts": Counter("WebSocket connect attempts, retries included"),
    "calls_connected": Counter("connect attempts whose upgrade completed"),
    "reconnects": Counter("connect retries after a failed attempt"),
    "turns": Counter("turns that ended, by scenario", by_scenario=True),
    "turns_ok": Counter("turns the agent answered in time, by scenario", by_scenario=True),
    "barge_attempts": Counter("barge-ins the caller made"),
    "barge_ok": Counter("barge-ins the agent honoured"),
    "frames_sent": Counter("caller audio frames sent"),
    "frames_received": Counter("agent messages received"),
    "stream_due_us": Counter("audio time streamed (µs): frames sent × frame length"),
    "stream_actual_us": Counter("wall time the streaming took (µs), first due to last sent"),
    "closes_ignored": Counter("benign closes not counted as failures (WS_IGNORE_CLOSE_...)"),
    "closes_benign_failed": Counter(
        "benign closes (1000/1001/1006) mid-turn that failed the turn (WS_IGNORE_CLOSE_... off)"
    ),
    **{name: Counter(doc) for name, doc in INBOUND_ANOMALIES.items()},
    "barge_skipped": Counter("scheduled barge-ins with nothing left to interrupt"),
    "greeting_absent": Counter("calls with no greeting within the greeting timeout"),
    "stop_while_silent": Counter(
        "agent stop signals (StopAudio, clear) that arrived while the agent was quiet; never a "
        "barge-in"
    ),
    "turns_cut": Counter("turns the run's stop timeout cut: neither success nor failure"),
    "after_run_time": Counter("TTFBs measured after the run time, while callers finished"),
}
"""Counter name → :class:`Counter`. The realtime factor is ``stream_due_us`` over
``stream_actual_us`` (1.0 = real time)."""


def _counter(name: str) -> Counter:
    try:
        return COUNTERS[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a declared counter (voice_stats.COUNTERS)") from None


class VoiceStats:
    """Histograms and counters of one process (worker delta, or the master's merged total)."""

    __slots__ = (
        "by_scenario", "counters", "cpu_max", "errors", "histograms", "scenario_counters", "spans",
    )  # fmt: skip

    def __init__(self) -> None:
        self.histograms = {name: Histogram(width) for name, (width, _) in HISTOGRAMS.items()}
        self.by_scenario: dict[tuple[str, str], Histogram] = {}
        self.counters: dict[str, int] = {}  # totals; read them with total()
        self.scenario_counters: dict[tuple[str, str], int] = {}  # (counter, scenario) → n
        self.errors: dict[str, int] = {}
        self.spans: dict[str, tuple[float, float]] = {}  # name → (first, last) epoch seconds
        self.cpu_max = 0.0

    def observe(self, name: str, value_ms: float, scenario: str = "") -> None:
        """Record ``value_ms`` in the histogram ``name`` (one of :data:`HISTOGRAMS`), and in
        its per-scenario twin when ``name`` is in :data:`BY_SCENARIO` and ``scenario`` given."""
        self.histograms[name].record(value_ms)
        if scenario and name in BY_SCENARIO:
            key = (name, scenario)
            histogram = self.by_scenario.get(key)
            if histogram is None:
                histogram = self.by_scenario[key] = Histogram(HISTOGRAMS[name][0])
            histogram.record(value_ms)

    def count(self, name: str, n: int = 1, scenario: str = "") -> None:
        """Add ``n`` to the counter ``name`` (one of :data:`COUNTERS`, else ``KeyError``), and
        to its per-scenario twin when the counter is kept by scenario and ``scenario`` given."""
        spec = _counter(name)
        self.counters[name] = self.counters.get(name, 0) + n
        if scenario and spec.by_scenario:
            key = (name, scenario)
            self.scenario_counters[key] = self.scenario_counters.get(key, 0) + n

    def total(self, name: str) -> int:
        """The counter ``name`` (one of :data:`COUNTERS`, else ``KeyError``); 0 if never
        counted."""
        _counter(name)
        return self.counters.get(name, 0)

    def per_scenario(self, name: str) -> dict[str, int]:
        """Scenario → count of the counter ``name``, which must be kept by scenario."""
        if not _counter(name).by_scenario:
            raise KeyError(f"{name!r} is not kept per scenario")
        return {
            sc: n for (counter, sc), n in sorted(self.scenario_counters.items()) if counter == name
        }

    def error(self, name: str, n: int = 1) -> None:
        """Count a failure by its stable error name (``ttfb_timeout``, ``connect_refused``…)."""
        self.errors[name] = self.errors.get(name, 0) + n

    def note_cpu(self, percent: float) -> None:
        self.cpu_max = max(self.cpu_max, percent)

    def note_span(self, name: str, first_s: float, last_s: float | None = None) -> None:
        """Widen the span ``name`` to include ``first_s``..``last_s`` (wall-clock epoch
        seconds; one instant when ``last_s`` is omitted)."""
        last_s = first_s if last_s is None else last_s
        span = self.spans.get(name)
        self.spans[name] = (
            (first_s, last_s) if span is None else (min(span[0], first_s), max(span[1], last_s))
        )

    def serialize(self) -> dict[str, Any]:
        return {
            "histograms": {name: h.serialize() for name, h in self.histograms.items()},
            "by_scenario": [[n, sc, h.serialize()] for (n, sc), h in self.by_scenario.items()],
            "counters": dict(self.counters),
            "scenario_counters": [[n, sc, v] for (n, sc), v in self.scenario_counters.items()],
            "errors": dict(self.errors),
            "spans": {name: list(span) for name, span in self.spans.items()},
            "cpu_max": self.cpu_max,
        }

    def take_delta(self) -> dict[str, Any]:
        """Serialise what was recorded since the last call, then start afresh."""
        payload = self.serialize()
        for histogram in self.histograms.values():
            histogram.reset()
        self.by_scenario.clear()
        self.counters.clear()
        self.scenario_counters.clear()
        self.errors.clear()
        self.spans.clear()
        # cpu_max is a maximum, not a sum: keep it so every report carries the run's peak.
        return payload

    def merge(self, payload: Mapping[str, Any]) -> None:
        """Add a worker's :meth:`take_delta` payload."""
        for name, histogram in payload.get("histograms", {}).items():
            if name in self.histograms:
                self.histograms[name].merge(histogram)
        for name, scenario, histogram in payload.get("by_scenario", []):
            if name in BY_SCENARIO:
                key = (str(name), str(scenario))
                if key not in self.by_scenario:
                    self.by_scenario[key] = Histogram(HISTOGRAMS[name][0])
                self.by_scenario[key].merge(histogram)
        # A counter this version does not declare (a worker of another version) is skipped,
        # like an unknown histogram: merging must not take the master down.
        for name, n in payload.get("counters", {}).items():
            if name in COUNTERS:
                self.counters[name] = self.counters.get(name, 0) + int(n)
        for name, scenario, n in payload.get("scenario_counters", []):
            if name in COUNTERS and COUNTERS[name].by_scenario:
                key = (str(name), str(scenario))
                self.scenario_counters[key] = self.scenario_counters.get(key, 0) + int(n)
        for name, n in payload.get("errors", {}).items():
            self.error(name, int(n))
        for name, (first, last) in payload.get("spans", {}).items():
            self.note_span(str(name), float(first), float(last))
        self.note_cpu(float(payload.get("cpu_max", 0.0)))
