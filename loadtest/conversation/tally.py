"""What a call's measurements mean for the run's numbers (core: pure).

The conversation engine decides *what* happened (:class:`~.measure.Sample`,
:class:`~.measure.TurnReport`, :class:`~.measure.Counters`); a :class:`Tally` turns that into
the process's mergeable :class:`~loadtest.metrics.voice_stats.VoiceStats` (histograms and
the declared counters) and returns the :class:`RequestSample`\\ s the edge hands to Locust's
``events.request``. It takes no clock: every value is in what it is given.

It lives with the conversation core rather than in :mod:`loadtest.metrics` because every input
is a conversation type, while :mod:`loadtest.metrics.voice_stats` is a leaf with no
dependencies: the summary, the SLO gate, the exporter and the HTML report stay importable
without the conversation core.

Per call, in the edge's order::

    tally = Tally(stats, per_turn_stats=..., ignore_benign_close=...)
    tally.call_placed()
    tally.connect_attempt(retry=attempt > 0)       # each attempt; then one of:
    sample = tally.connected(elapsed_ms)           # or tally.connect_failed(error, detail,
                                                   #       ms, at_s=wall clock)
    ...
    samples = tally.events(conversation.events(), benign_close=..., run_ended_ns=...)
    tally.stream(frames=n, chunk_ms=20, first_due_ns=..., last_sent_ns=...)  # at hang-up
    tally.frames_received(n)
    tally.counters(conversation.counters)
    tally.call_ended()                             # also when it never connected
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from loadtest.conversation.measure import Counters, Event, Failure, Metric, Sample, TurnReport
from loadtest.metrics.voice_stats import INBOUND_ANOMALIES, VoiceStats

__all__ = ["COUNTED", "RequestSample", "Tally"]

COUNTED = (
    *(name for name in INBOUND_ANOMALIES if name in Counters.__dataclass_fields__),
    "barge_skipped",
    "greeting_absent",
    "stop_while_silent",
)
"""The conversation's :class:`~.measure.Counters` fields that become run counters: the
agent's inbound anomalies, what was planned but could not happen, stops while silent."""


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One Locust request event: its name, value (ms), stable error name (``None``: success)
    and a detail for the failure message."""

    name: str
    value_ms: float
    error: str | None = None
    detail: str = ""


class Tally:
    """Records one caller's measurements into ``stats``. Not shared between callers."""

    __slots__ = ("ignore_benign_close", "per_turn_stats", "stats")

    def __init__(
        self, stats: VoiceStats, *, per_turn_stats: bool = False, ignore_benign_close: bool = False
    ) -> None:
        self.stats = stats
        self.per_turn_stats = per_turn_stats  # PER_TURN_STATS: also ttfb/<scenario>/<turn>
        self.ignore_benign_close = ignore_benign_close  # WS_IGNORE_CLOSE_EXCEPTIONS

    # ------------------------------------------------------------------ connect
    def call_placed(self) -> None:
        self.stats.count("calls")

    def connect_attempt(self, *, retry: bool) -> None:
        if retry:
            self.stats.count("reconnects")
        self.stats.count("connect_attempts")

    def connected(self, elapsed_ms: float) -> RequestSample:
        self.stats.count("calls_connected")
        self.stats.observe("connect_ms", elapsed_ms)
        return RequestSample(Metric.CONNECT.value, elapsed_ms)

    def connect_failed(
        self, error: str, detail: str, elapsed_ms: float, *, at_s: float
    ) -> RequestSample:
        """A failed attempt at ``at_s`` (wall-clock epoch seconds: the outage window)."""
        self.stats.error(error)
        self.stats.note_span("connect_failure", at_s)
        return RequestSample(Metric.CONNECT.value, elapsed_ms, error, detail)

    def call_ended(self) -> None:
        """The call is over (connected or not): with ``calls`` it tells the calls in flight."""
        self.stats.count("calls_ended")

    def protocol_error(self) -> None:
        """The caller failed the connection because the agent broke the WebSocket protocol."""
        self.stats.count("protocol_errors")

    # ------------------------------------------------------------------ the conversation
    def events(
        self, events: Iterable[Event], *, benign_close: bool, run_ended_ns: int | None = None
    ) -> list[RequestSample]:
        """Record ``events`` (from :meth:`Conversation.events`); the Locust samples to fire.

        ``benign_close``: the connection closed normally (1000/1001/1006). A turn cut by such
        a close is counted, not failed, when the user asked so (``ignore_benign_close``:
        ``WS_IGNORE_CLOSE_EXCEPTIONS``); otherwise it fails and is also counted as
        ``closes_benign_failed``, so the run can say why.
        ``run_ended_ns``: when the run time ran out, if it has; answers decided from then on
        (while callers finish their turn) count like any other and also as ``after_run_time``."""
        samples: list[RequestSample] = []
        for event in events:
            if isinstance(event, Sample):
                samples += self._sample(event, benign_close, run_ended_ns)
            elif isinstance(event, TurnReport):
                if event.cut:
                    self.stats.count("turns_cut")
                if event.barge is not None and event.barge.audible_talk_over_ms is not None:
                    self.stats.observe("talk_over_ms", event.barge.audible_talk_over_ms)
                if event.answer is not None:
                    for gap in event.answer.gaps_ms:
                        self.stats.observe("agent_gap_ms", gap)
        return samples

    def _sample(
        self, sample: Sample, benign_close: bool, run_ended_ns: int | None
    ) -> list[RequestSample]:
        stats, metric, failure = self.stats, sample.metric, sample.failure
        if metric is Metric.CONNECT:
            return []  # measured around the upgrade itself: connected() / connect_failed()
        if failure is Failure.CLOSED_MID_TURN and benign_close:
            if self.ignore_benign_close:
                stats.count("closes_ignored")
                return []
            stats.count("closes_benign_failed")
        ok = failure is None
        scenario = sample.scenario
        if metric is Metric.TTFB and ok:
            stats.observe("ttfb_ms", sample.value_ms, scenario)
            if run_ended_ns is not None and sample.at_ns >= run_ended_ns:
                stats.count("after_run_time")
        elif metric is Metric.GREETING and ok:
            stats.observe("greeting_ms", sample.value_ms)
        elif metric is Metric.BARGE_IN:
            stats.count("barge_attempts")
            if ok:
                stats.count("barge_ok")
                stats.observe("barge_in_ms", sample.value_ms, scenario)
        elif metric is Metric.TURN:
            stats.count("turns", scenario=scenario)
            if ok:
                stats.count("turns_ok", scenario=scenario)
                stats.observe("turn_ms", sample.value_ms, scenario)
        if failure is not None and metric is not Metric.TURN:
            # One failure, one count: the turn's own sample carries the cause (a TTFB
            # timeout, an ignored barge-in), so these are no second failure anywhere.
            return []
        error = None if failure is None else failure.value
        if error is not None:
            stats.error(error)
        out = [RequestSample(metric.value, sample.value_ms, error, sample.detail)]
        if self.per_turn_stats and sample.turn_index is not None:
            name = f"{metric.value}/{scenario}/{sample.turn_index + 1}"
            out.append(RequestSample(name, sample.value_ms, error, sample.detail))
        return out

    # ------------------------------------------------------------------ hang-up
    def stream(self, *, frames: int, chunk_ms: int, first_due_ns: int, last_sent_ns: int) -> None:
        """The call's sending side: ``frames`` sent, the first due at ``first_due_ns``, the
        last sent at ``last_sent_ns``. Its realised pace is audio time over the wall time it
        took (the realtime factor: 1.0 is real time)."""
        if not frames:
            return
        chunk_us = chunk_ms * 1000
        self.stats.count("frames_sent", frames)
        self.stats.count("stream_due_us", frames * chunk_us)
        self.stats.count("stream_actual_us", (last_sent_ns - first_due_ns) // 1000 + chunk_us)

    def frames_received(self, n: int) -> None:
        self.stats.count("frames_received", n)

    def counters(self, counters: Counters) -> None:
        """What the conversation counted rather than timed (:data:`COUNTED`)."""
        for name in COUNTED:
            value = getattr(counters, name)
            if value:
                self.stats.count(name, value)
