"""Turns the engine's running state into measurement records, in decision order."""

from __future__ import annotations

from loadtest.conversation.measure import (
    BargeOutcome,
    BargeReport,
    Event,
    Failure,
    GreetingReport,
    Metric,
    Sample,
    TurnReport,
)
from loadtest.conversation.tracks import AudioTrack, TurnState

__all__ = ["Recorder"]

_NS_PER_MS = 1_000_000


class Recorder:
    """Collects :class:`Sample` and report records for one conversation until drained."""

    __slots__ = ("_events", "_scenario", "_window_ms")

    def __init__(self, scenario: str, barge_window_ms: int) -> None:
        self._scenario = scenario
        self._window_ms = barge_window_ms
        self._events: list[Event] = []

    def drain(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    @property
    def pending(self) -> bool:
        """Something was recorded since the last :meth:`drain`."""
        return bool(self._events)

    def sample(
        self,
        metric: Metric,
        value_ms: float,
        at_ns: int,
        *,
        turn: TurnState | None = None,
        failure: Failure | None = None,
        detail: str = "",
    ) -> None:
        self._events.append(
            Sample(
                metric=metric,
                value_ms=value_ms,
                at_ns=at_ns,
                scenario=self._scenario,
                turn_index=None if turn is None else turn.plan.index,
                failure=failure,
                detail=detail,
            )
        )

    def barge_decided(self, turn: TurnState, report: BargeReport) -> None:
        """A ``barge_in`` sample for a latency or an ignored barge-in; none otherwise."""
        if report.latency_ms is not None:
            self.sample(Metric.BARGE_IN, report.latency_ms, report.decided_ns, turn=turn)
        elif report.outcome is BargeOutcome.IGNORED:
            reference_ns = report.started_ns if report.speech_ns is None else report.speech_ns
            turn.failure = turn.failure or Failure.BARGE_IGNORED
            self.sample(
                Metric.BARGE_IN,
                (report.decided_ns - reference_ns) / _NS_PER_MS,
                report.decided_ns,
                turn=turn,
                failure=Failure.BARGE_IGNORED,
                detail=f"agent audio still arriving or playing {self._window_ms} ms after "
                "the barge-in",
            )

    def greeting_ended(
        self,
        greeting: AudioTrack | None,
        start_ns: int,
        *,
        barged: bool,
        truncated: bool,
        ended_ns: int,
    ) -> None:
        self._events.append(
            GreetingReport(
                latency_ms=None
                if greeting is None
                else (greeting.first_ns - start_ns) / _NS_PER_MS,
                answer=None if greeting is None else greeting.stats(),
                barged=barged,
                truncated=truncated,
                ended_ns=ended_ns,
            )
        )

    def turn_ended(
        self,
        turn: TurnState,
        ended_ns: int,
        *,
        truncated: bool = False,
        close: tuple[int | None, str] | None = None,
        close_failure: Failure = Failure.CLOSED_MID_TURN,
    ) -> None:
        """The ``turn`` sample, then the :class:`TurnReport` (``close``: code and reason; the
        turn then fails ``close_failure`` unless it had failed already)."""
        barge = turn.barge
        if barge is not None and barge.report is None:
            self.barge_decided(turn, barge.finish(ended_ns, closed=close is not None))
        failure, detail = turn.failure, ""
        close_code, close_reason = close if close is not None else (None, "")
        if close is not None:
            failure = failure or close_failure
            detail = f"connection closed (code {close_code}) {close_reason}".strip()
        started_ns = turn.t0_ns if turn.started_ns is None else turn.started_ns
        ended_ns = max(ended_ns, started_ns)
        self.sample(
            Metric.TURN,
            (ended_ns - started_ns) / _NS_PER_MS,
            ended_ns,
            turn=turn,
            failure=failure,
            detail=detail,
        )
        self._report(
            turn, ended_ns, failure, truncated=truncated, close_code=close_code,
            close_reason=close_reason,
        )  # fmt: skip

    def turn_cut(self, turn: TurnState, cut_ns: int) -> None:
        """The run's end stopped the caller during ``turn``: its report (``cut``), no sample."""
        started_ns = turn.t0_ns if turn.started_ns is None else turn.started_ns
        self._report(turn, max(cut_ns, started_ns), turn.failure, cut=True)

    def _report(
        self,
        turn: TurnState,
        ended_ns: int,
        failure: Failure | None,
        *,
        truncated: bool = False,
        close_code: int | None = None,
        close_reason: str = "",
        cut: bool = False,
    ) -> None:
        plan, barge = turn.plan, turn.barge
        self._events.append(
            TurnReport(
                index=plan.index,
                scenario=plan.scenario,
                audio_key=plan.audio.key,
                barge_scheduled=plan.barge,
                started_ns=turn.t0_ns if turn.started_ns is None else turn.started_ns,
                speech_ns=turn.speech_ns,
                eos_ns=turn.eos_ns,
                ended_ns=ended_ns,
                ttfb_ms=turn.ttfb_ms,
                failure=failure,
                talk_over=turn.talk_over.snapshot(),
                answer=None if turn.answer is None else turn.answer.stats(),
                barge=None if barge is None else barge.report,
                truncated=truncated,
                close_code=close_code,
                close_reason=close_reason,
                cut=cut,
                speech_media_ms=turn.speech_media_ms,
                eos_media_ms=turn.eos_media_ms,
            )
        )
