"""One simulated call over a real WebSocket: the I/O around the conversation core (edge).

:class:`CallDriver` (run by each Locust user) connects with capped, jittered retries, waits a
random fraction of a frame (so a worker's callers are spread over the frame period instead of
all falling due at once — a real phone's frame phase is arbitrary too), sends the protocol's
opening messages, starts the conversation and then:

* every inbound message is handed to :meth:`Conversation.receive` straight from the socket's
  readiness callback (:meth:`WebSocketTransport.start_receiving`), stamped with
  ``time.monotonic_ns()`` the moment the read returned (classification is cheap and never
  decodes audio) — no receiver greenlet, so no greenlet switch per message;
* the per-worker :class:`~loadtest.runtime.scheduler.FrameScheduler` sends the frames: one
  greenlet keeps every caller's next deadline in a heap, sleeps until the earliest, and
  serves every caller that is due in that one wake-up — here :meth:`_Stream.serve`:
  ``frames_due``, one non-blocking send of the pre-encoded frame, then ``sent`` with the
  instant the send returned (the engine's call order, unchanged).

Measurements leave through a :class:`Sink` (the Locust plugin): request samples in
milliseconds, histograms and counters. A failing call is a measurement, never an exception.
``time.monotonic_ns`` is the same clock the agent simulator's ground truth uses.

``VOICE_LOADTEST_TURN_LOG=FILE`` turns on the per-turn JSONL log (:mod:`.turnlog`).
"""

from __future__ import annotations

import gc
import os
import random
import time
from typing import Protocol

import gevent
from gevent.event import Event

from loadtest.conversation import (
    Conversation,
    ConversationConfig,
    Failure,
    FrameKind,
    Metric,
    ReconnectBackoff,
    Sample,
    TurnReport,
    build_plan,
    choose_scenario,
)
from loadtest.conversation.marks import MarkEchoes
from loadtest.metrics.voice_stats import VoiceStats
from loadtest.protocols.caller_api import CallStream
from loadtest.runtime.library import AudioLibrary
from loadtest.runtime.scheduler import FrameScheduler
from loadtest.runtime.transport import Closed, ConnectFailed, WebSocketTransport, close_is_benign
from loadtest.runtime.turnlog import TURN_LOG_ENV, TurnLog
from loadtest.settings import CallerSettings

__all__ = ["CallDriver", "Sink", "flush_turn_log"]

_phase_rng = random.Random()  # frame phase only: never draws from a caller's scenario rng


class Sink(Protocol):
    """Where a call's measurements go (the Locust plugin implements it)."""

    stats: VoiceStats

    def sample(self, name: str, value_ms: float, error: str | None, detail: str) -> None: ...


class _Call:
    """What a protocol needs to open/close one call."""

    __slots__ = ("call_id", "frame_ms", "sample_rate")

    def __init__(self, call_id: str, library: AudioLibrary) -> None:
        self.call_id = call_id
        self.sample_rate = library.sample_rate
        self.frame_ms = library.chunk_ms


class _Stream:
    """One call's sending side, served by the :class:`FrameScheduler`."""

    __slots__ = (
        "call_stream", "closed", "conversation", "count", "done", "driver", "epoch_offset_ns",
        "error", "first_due", "frames", "last_sent", "lateness", "marks", "start_ns", "tail",
        "transport",
    )  # fmt: skip

    def __init__(
        self,
        driver: CallDriver,
        transport: WebSocketTransport,
        conversation: Conversation,
        call_stream: CallStream,
        marks: MarkEchoes | None,
    ) -> None:
        self.driver = driver
        self.call_stream = call_stream  # how the protocol names and numbers this stream
        self.marks = marks  # the agent's playback marks waiting to be echoed, if any
        self.transport = transport
        self.conversation = conversation
        self.frames = driver.library.frames
        self.tail = driver.library.tail
        self.lateness = driver.sink.stats.histograms["frame_lateness_ms"]
        self.epoch_offset_ns = time.time_ns() - time.monotonic_ns()
        self.start_ns = conversation.next_deadline_ns() or time.monotonic_ns()
        self.count = self.first_due = self.last_sent = 0
        self.closed: Closed | None = None
        self.error: BaseException | None = None
        self.done = Event()

    def serve(self, forward: bool = True) -> int | None:
        """Send every due frame; the next deadline, or ``None`` when this stream is over.

        ``forward=False`` (in the event loop's own callbacks, which must not block) leaves the
        measurements decided so far queued for the scheduler greenlet to forward.
        """
        conversation = self.conversation
        if self.done.is_set():
            return None
        if not conversation.done:
            frames, tail, transport = self.frames, self.tail, self.transport
            stream = self.call_stream
            for frame in conversation.frames_due(time.monotonic_ns()):
                if frame.kind is FrameKind.UTTERANCE:
                    encoded = frames[frame.audio_key][frame.index]  # type: ignore[index]
                else:
                    encoded = tail[frame.index % len(tail)]
                self.count += 1
                media_ms = (frame.due_ns - self.start_ns) // 1_000_000
                message = encoded.render(
                    self.count, media_ms, frame.due_ns + self.epoch_offset_ns, stream
                )
                try:
                    transport.send_nowait(message)
                except Closed as exc:
                    self.count -= 1
                    self.closed = exc
                    conversation.closed(time.monotonic_ns(), exc.code, exc.reason)
                    break
                sent = self.last_sent = time.monotonic_ns()
                self.lateness.record(conversation.sent(frame, sent) / 1e6)
                if self.count == 1:
                    self.first_due = frame.due_ns
            if self.marks is not None and self.closed is None:
                self._echo_marks()
            if forward:
                self.driver._forward(conversation, transport.call_id)
        deadline = conversation.next_deadline_ns()
        if deadline is None:
            self.done.set()
        return deadline

    def _echo_marks(self) -> None:
        """Echo the agent's marks whose audio the caller has heard by now (Twilio). Checked
        at every frame tick, so an echo leaves at most one frame after its instant."""
        assert self.marks is not None
        protocol, stream = self.driver.library.protocol, self.call_stream
        for name in self.marks.due(time.monotonic_ns()):
            try:
                self.transport.send_nowait(protocol.mark_echo(name, self.count, stream))
            except Closed as exc:
                self.closed = exc
                self.conversation.closed(time.monotonic_ns(), exc.code, exc.reason)
                return
            stream.echoes += 1

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self.done.set()

    def forward(self) -> None:
        """Hand the measurements decided so far to the sink (may block: Locust listeners)."""
        self.driver._forward(self.conversation, self.transport.call_id)


_scheduler: FrameScheduler | None = None
_turn_log: TurnLog | None = None
_started = False


def _process_start_up() -> None:
    """Once per process, when the first caller is built (the audio library is loaded)."""
    global _scheduler, _turn_log, _started
    if _started:
        return
    _started = True
    _scheduler = FrameScheduler()
    path = os.environ.get(TURN_LOG_ENV, "")
    _turn_log = TurnLog(path) if path else None
    gc.collect()
    gc.freeze()  # the library's frames and start-up objects never need scanning again


def flush_turn_log() -> None:
    """Write out the turn log's pending lines now (no-op when the log is off)."""
    if _turn_log is not None:
        _turn_log.flush()


class CallDriver:
    """Runs calls for one simulated caller. Not shared between callers."""

    def __init__(
        self,
        settings: CallerSettings,
        library: AudioLibrary,
        config: ConversationConfig,
        sink: Sink,
        rng: random.Random,
    ) -> None:
        _process_start_up()
        self.settings = settings
        self.library = library
        self.config = config
        self.sink = sink
        self.rng = rng
        self.backoff = ReconnectBackoff(
            base_ms=settings.reconnect_base_delay_ms, cap_ms=settings.reconnect_max_delay_ms
        )

    # ------------------------------------------------------------------ connect
    def _connect(self) -> tuple[WebSocketTransport, int] | None:
        stats = self.sink.stats
        timeout_s = min(10.0, self.settings.first_byte_timeout_ms / 1000 + 5)
        for attempt in range(self.settings.reconnect_max + 1):
            if attempt:
                stats.count("reconnects")
                gevent.sleep(self.backoff.delay_ms(attempt - 1, self.rng) / 1000)
            transport = WebSocketTransport(self.settings)
            started = time.monotonic_ns()
            stats.count("connect_attempts")
            try:
                transport.connect(self.settings.ws_url, timeout_s)
            except ConnectFailed as exc:
                elapsed_ms = (time.monotonic_ns() - started) / 1e6
                stats.error(exc.error)
                self.sink.sample(Metric.CONNECT.value, elapsed_ms, exc.error, exc.detail)
                continue
            connected = time.monotonic_ns()
            stats.count("calls_connected")
            stats.observe("connect_ms", (connected - started) / 1e6)
            self.sink.sample(Metric.CONNECT.value, (connected - started) / 1e6, None, "")
            return transport, started
        return None

    # ------------------------------------------------------------------ one call
    def run_call(self) -> None:
        """One whole conversation; returns when it is over (or could not connect)."""
        self.sink.stats.count("calls")
        connected = self._connect()
        if connected is None:
            return
        transport, connect_started = connected
        plan = build_plan(choose_scenario(self.library.scenarios, self.rng), self.config, self.rng)
        conversation = Conversation(plan, self.config)
        protocol, call = self.library.protocol, _Call(transport.call_id, self.library)
        stream: _Stream | None = None
        received = 0
        tokens = (self.settings.response_tokens, self.settings.end_tokens)
        classify, receive = protocol.classify, conversation.receive
        call_stream = CallStream(protocol.stream_id(call))
        marks: MarkEchoes | None = None
        if protocol.echoes_marks:
            # A playback model of its own, not the conversation's: that one holds messages back
            # while a first-speech/EOS frame is in flight, and an echo's time must not wait.
            marks = MarkEchoes(self.config.agent_sample_rate, time.monotonic_ns())

        scheduler = _scheduler
        assert scheduler is not None

        def on_messages(arrival_ns: int, messages: list[str | bytes]) -> None:
            nonlocal received
            received += len(messages)
            for message in messages:
                inbound = classify(message, *tokens)
                receive(inbound, arrival_ns)
                if marks is not None:
                    marks.heard(inbound, arrival_ns)
            scheduler.serve_overdue()

        def on_closed(exc: Closed) -> None:
            conversation.closed(time.monotonic_ns(), exc.code, exc.reason)

        try:
            gevent.sleep(_phase_rng.random() * self.config.chunk_ms / 1000)
            for message in protocol.open_messages(call, call_stream):
                transport.send(message)
            conversation.start(time.monotonic_ns(), connect_started_ns=connect_started)
            stream = _Stream(self, transport, conversation, call_stream, marks)
            transport.start_receiving(on_messages, on_closed, stream.fail)
            scheduler.run(stream)
            if stream.closed is not None:
                raise stream.closed
            for message in protocol.close_messages(call, stream.count, call_stream):
                transport.send(message)
        except Closed as exc:
            conversation.closed(time.monotonic_ns(), exc.code, exc.reason)
        finally:
            transport.close(1000)
            self.sink.stats.count("frames_received", received)
            if stream is not None:
                self._count_stream(stream)
            self._forward(conversation, transport.call_id)
            self._record_counters(conversation)

    def _count_stream(self, stream: _Stream) -> None:
        if stream.count:
            # Realised pace: audio time sent over the wall time it took (1.0 = real time).
            stats = self.sink.stats
            chunk_us = self.config.chunk_ms * 1000
            stats.count("frames_sent", stream.count)
            stats.count("stream_due_us", stream.count * chunk_us)
            actual_us = (stream.last_sent - stream.first_due) // 1000 + chunk_us
            stats.count("stream_actual_us", actual_us)

    # ------------------------------------------------------------------ measurements
    def _forward(self, conversation: Conversation, call_id: str) -> None:
        events = conversation.events()
        if not events:
            return
        stats = self.sink.stats
        benign = conversation.close_code is not None and close_is_benign(conversation.close_code)
        for event in events:
            if isinstance(event, Sample):
                self._sample(event, stats, benign)
            elif isinstance(event, TurnReport):
                if event.barge is not None and event.barge.audible_talk_over_ms is not None:
                    stats.observe("talk_over_ms", event.barge.audible_talk_over_ms)
                if event.answer is not None:
                    for gap in event.answer.gaps_ms:
                        stats.observe("agent_gap_ms", gap)
                if _turn_log is not None:
                    _turn_log.add(call_id, event)

    def _sample(self, sample: Sample, stats: VoiceStats, benign_close: bool) -> None:
        metric, failure = sample.metric, sample.failure
        if metric is Metric.CONNECT:
            return  # measured around the upgrade itself in _connect
        if failure is Failure.CLOSED_MID_TURN and benign_close:
            if self.settings.ws_ignore_close_exceptions:
                stats.count("closes_ignored")  # counted, but not a failure
                return
            stats.count("closes_benign_failed")  # a failure here, not in the accelerator
        ok = failure is None
        scenario = sample.scenario
        if metric is Metric.TTFB and ok:
            stats.observe("ttfb_ms", sample.value_ms, scenario)
        elif metric is Metric.GREETING and ok:
            stats.observe("greeting_ms", sample.value_ms)
        elif metric is Metric.BARGE_IN:
            stats.count("barge_attempts")
            if ok:
                stats.count("barge_ok")
                stats.observe("barge_in_ms", sample.value_ms, scenario)
        elif metric is Metric.TURN:
            stats.count("turns")
            stats.count(f"turns@{scenario}")
            if ok:
                stats.count("turns_ok")
                stats.count(f"turns_ok@{scenario}")
                stats.observe("turn_ms", sample.value_ms, scenario)
        if failure is not None:
            stats.error(failure.value)
        error = None if failure is None else failure.value
        self.sink.sample(metric.value, sample.value_ms, error, sample.detail)
        if self.settings.per_turn_stats and sample.turn_index is not None:
            name = f"{metric.value}/{sample.scenario}/{sample.turn_index + 1}"
            self.sink.sample(name, sample.value_ms, error, sample.detail)

    def _record_counters(self, conversation: Conversation) -> None:
        counters = conversation.counters
        stats = self.sink.stats
        for name in ("inbound_malformed", "stray_audio_frames", "barge_skipped", "greeting_absent"):
            value = getattr(counters, name)
            if value:
                stats.count(name, value)
