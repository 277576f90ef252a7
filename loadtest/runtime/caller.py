"""One simulated call over a real WebSocket: the I/O around the conversation core (edge).

:class:`CallDriver` (run by each Locust user) connects with capped, jittered retries — the
backoff grows with the caller's consecutive failures across calls and resets only when one
connects (:class:`~loadtest.conversation.backoff.ConnectFailures`) — sends the protocol's
opening messages, starts the conversation at the call's phase of the frame period
(:class:`~loadtest.runtime.scheduler.FramePhases`: a worker's callers spread evenly over
the period instead of falling due together — a real phone's frame phase is arbitrary too)
and then:

* every inbound message is stamped with the instant it arrived — the kernel's receive stamp
  where the transport has one (Linux), else the moment the read returned — in
  the socket's readiness callback (:meth:`WebSocketTransport.start_receiving`) — no
  receiver greenlet, so no greenlet switch per message — and only queued there: the
  callback does as little as it can, because when many sockets turn readable in one
  event-loop iteration each read waits for every callback before it, and without a kernel
  stamp the read instant is the measurement;
* the per-worker :class:`~loadtest.runtime.scheduler.FrameScheduler` sends the frames: one
  greenlet keeps every caller's next deadline in a heap, sleeps until the earliest, and
  serves every caller that is due in that one wake-up — here :meth:`_Stream.serve`: first
  the messages read since the last frame go to :meth:`Conversation.receive` with their
  arrival instants (classification is cheap and never decodes audio), then ``frames_due``,
  one non-blocking send of the pre-encoded frame, then ``sent`` with the instant the send
  returned (the engine's call order, unchanged). The engine acts only in ``frames_due``, so
  it decides on exactly what it would have heard had each message been handled on arrival.
  A message that arrived before the conversation's start, or before this call's last
  ``frames_due`` or send but was read after it, is given that instant instead: the engine
  has decided as of then, and its time never runs back.

What the measurements mean for the run's numbers is decided in the core
(:class:`~loadtest.conversation.tally.Tally`); they leave through a :class:`Sink` (the Locust
plugin): request samples in milliseconds, histograms and counters. A failing call is a
measurement, never an exception. ``time.monotonic_ns`` is the same clock the agent
simulator's ground truth uses.

The socket is behind :class:`Transport` (:class:`WebSocketTransport` in production), so the
driver runs against an in-memory fake in unit tests.

``TURN_LOG=FILE`` (``--turn-log``) turns on the per-turn JSONL log (:mod:`.turnlog`).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from typing import Protocol

import gevent
from gevent.event import Event

from loadtest.conversation import (
    ConnectFailures,
    Conversation,
    ConversationConfig,
    Failure,
    FrameKind,
    ReconnectBackoff,
    TurnReport,
    build_plan,
    choose_scenario,
)
from loadtest.conversation.marks import MarkEchoes
from loadtest.conversation.tally import RequestSample, Tally
from loadtest.metrics.voice_stats import VoiceStats
from loadtest.protocols.caller_api import CallStream
from loadtest.runtime.library import AudioLibrary
from loadtest.runtime.readiness import read_readiness
from loadtest.runtime.scheduler import FramePhases, FrameScheduler
from loadtest.runtime.transport import Closed, ConnectFailed, WebSocketTransport, close_is_benign
from loadtest.runtime.turnlog import CallIds, TurnLog
from loadtest.settings import CallerSettings

__all__ = ["CallDriver", "Sink", "Transport", "flush_turn_log", "hang_up_calls", "resume_calls"]

_phases = FramePhases()  # where each new call of this process falls in the frame period


class Sink(Protocol):
    """Where a call's measurements go (the Locust plugin implements it).

    ``run_ended_ns`` is the monotonic instant the run's end was signalled (``None`` while it
    runs): answers decided from then on are counted again as ``after_run_time``.
    """

    stats: VoiceStats
    run_ended_ns: int | None

    def sample(self, name: str, value_ms: float, error: str | None, detail: str) -> None: ...


class Transport(Protocol):
    """One call's connection, as the driver uses it (see :class:`WebSocketTransport`).

    ``connect`` raises :class:`ConnectFailed`; after it, sends raise :class:`Closed` once the
    connection is gone. ``start_receiving`` delivers inbound messages from the event loop
    with the instant they arrived; its callbacks must not block.
    """

    call_id: str
    correlation_id: str

    def connect(self, url: str, timeout_s: float) -> None: ...

    def send(self, message: str | bytes) -> None:
        """Send and wait until the connection took it (may yield)."""
        ...

    def send_nowait(self, message: str | bytes) -> None:
        """Send without ever yielding (queues what cannot go at once)."""
        ...

    def start_receiving(
        self,
        on_messages: Callable[[int, list[str | bytes]], None],
        on_closed: Callable[[Closed], None],
        on_error: Callable[[BaseException], None],
    ) -> None: ...

    def close(self, code: int = 1000) -> None:
        """Close politely; never raises."""
        ...


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
        "call_stream", "classify", "closed", "conversation", "count", "done", "driver",
        "epoch_offset_ns", "error", "first_due", "frames", "inbox", "last_sent", "lateness",
        "marks", "received", "served_ns", "start_ns", "tail", "tokens", "transport",
    )  # fmt: skip

    def __init__(
        self,
        driver: CallDriver,
        transport: Transport,
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
        self.count = self.first_due = self.last_sent = self.received = 0
        # the engine's latest instant: a message that arrived earlier is heard then (hear)
        self.served_ns = self.start_ns
        self.classify = driver.library.protocol.classify
        self.tokens = (driver.settings.response_tokens, driver.settings.end_tokens)
        self.inbox: list[tuple[int, list[str | bytes]]] = []  # read, not yet heard
        self.closed: Closed | None = None
        self.error: BaseException | None = None
        self.done = Event()

    def serve(self) -> int | None:
        """Hear what was read, send every due frame, forward the measurements; the next
        deadline, or ``None`` when this stream is over."""
        conversation = self.conversation
        if self.done.is_set():
            return None
        if self.inbox:
            self.hear()
        if not conversation.done:
            frames, tail, transport = self.frames, self.tail, self.transport
            stream = self.call_stream
            self.served_ns = now_ns = time.monotonic_ns()
            for frame in conversation.frames_due(now_ns):
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
                    self.closed = exc.detached()
                    conversation.closed(time.monotonic_ns(), exc.code, exc.reason)
                    break
                sent = self.last_sent = time.monotonic_ns()
                self.lateness.record(conversation.sent(frame, sent) / 1e6)
                if self.count == 1:
                    self.first_due = frame.due_ns
            if self.marks is not None and self.closed is None:
                self._echo_marks()
            if conversation.has_events:
                self.driver._forward(conversation)
        deadline = conversation.next_deadline_ns()
        if deadline is None:
            self.done.set()
        return deadline

    def take(self, arrived_ns: int, messages: list[str | bytes]) -> None:
        """Messages just read, which arrived at ``arrived_ns`` (the readiness callback):
        queued, not handled."""
        self.received += len(messages)
        self.inbox.append((arrived_ns, messages))

    def hear(self) -> None:
        """Hand the messages read so far to the conversation, oldest first, each with the
        instant it arrived — or the engine's last instant, if that is later (see the module's
        docstring)."""
        inbox, self.inbox = self.inbox, []
        classify, tokens, marks = self.classify, self.tokens, self.marks
        receive = self.conversation.receive
        floor_ns = max(self.served_ns, self.last_sent)
        for arrived_ns, messages in inbox:
            if arrived_ns < floor_ns:
                arrived_ns = floor_ns
            for message in messages:
                inbound = classify(message, *tokens)
                receive(inbound, arrived_ns)
                if marks is not None:
                    marks.heard(inbound, arrived_ns)

    def _echo_marks(self) -> None:
        """Echo the agent's marks whose audio the caller has heard by now (Twilio). Checked
        at every frame tick, so an echo leaves at most one frame after its instant."""
        assert self.marks is not None
        protocol, stream = self.driver.library.protocol, self.call_stream
        for name in self.marks.due(time.monotonic_ns()):
            try:
                self.transport.send_nowait(protocol.mark_echo(name, self.count, stream))
            except Closed as exc:
                self.closed = exc.detached()
                self.conversation.closed(time.monotonic_ns(), exc.code, exc.reason)
                return
            stream.echoes += 1

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self.done.set()


_scheduler: FrameScheduler | None = None
_turn_log: TurnLog | None = None
_started = False
_calls: set[Conversation] = set()  # this process's conversations in progress
_run_ending = False


def hang_up_calls() -> None:
    """The run is ending: every call in progress, and any that connects from now on,
    finishes its current turn and hangs up normally (:meth:`Conversation.hang_up_after_turn`).
    """
    global _run_ending
    _run_ending = True
    for conversation in _calls:
        conversation.hang_up_after_turn()


def resume_calls() -> None:
    """A new run starts: calls run their whole plan again."""
    global _run_ending
    _run_ending = False


def _process_start_up(settings: CallerSettings) -> None:
    """Once per process, when the first caller is built (the audio library is loaded)."""
    global _scheduler, _turn_log, _started
    if _started:
        return
    _started = True
    readiness = read_readiness()  # the scheduler reads the sockets between sends
    _scheduler = FrameScheduler(readiness.poll if readiness.polls else None)
    _turn_log = TurnLog(settings.turn_log) if settings.turn_log else None
    gc.collect()
    gc.freeze()  # the library's frames and start-up objects never need scanning again


def flush_turn_log() -> None:
    """Write out the turn log's pending lines now (no-op when the log is off)."""
    if _turn_log is not None:
        _turn_log.flush()


def _call_ids(transport: Transport, protocol: str, ids: dict[str, str]) -> CallIds:
    return CallIds(
        call_id=transport.call_id,
        correlation_id=transport.correlation_id,
        protocol=protocol,
        epoch_offset_ns=time.time_ns() - time.monotonic_ns(),
        stream_sid=ids.get("stream_sid"),
        call_sid=ids.get("call_sid"),
    )


class CallDriver:
    """Runs calls for one simulated caller. Not shared between callers.

    ``transport`` makes one connection per attempt (default: a real WebSocket)."""

    def __init__(
        self,
        settings: CallerSettings,
        library: AudioLibrary,
        config: ConversationConfig,
        sink: Sink,
        rng: random.Random,
        transport: Callable[[CallerSettings], Transport] = WebSocketTransport,
    ) -> None:
        _process_start_up(settings)
        self.settings = settings
        self.library = library
        self.config = config
        self.sink = sink
        self.rng = rng
        self.failures = ConnectFailures(
            ReconnectBackoff(
                base_ms=settings.reconnect_base_delay_ms, cap_ms=settings.reconnect_max_delay_ms
            )
        )
        self.tally = Tally(
            sink.stats,
            per_turn_stats=settings.per_turn_stats,
            ignore_benign_close=settings.ws_ignore_close_exceptions,
        )
        self.new_transport = transport
        self._ids: CallIds | None = None  # the call in progress, for the per-turn log

    # ------------------------------------------------------------------ connect
    def _connect(self) -> tuple[Transport, int] | None:
        tally = self.tally
        timeout_s = min(10.0, self.settings.first_byte_timeout_ms / 1000 + 5)
        for attempt in range(self.settings.reconnect_max + 1):
            delay_ms = self.failures.delay_ms(self.rng)  # grows across calls while they fail
            if delay_ms:
                gevent.sleep(delay_ms / 1000)
            tally.connect_attempt(retry=attempt > 0)
            transport = self.new_transport(self.settings)
            started = time.monotonic_ns()
            try:
                transport.connect(self.settings.ws_url, timeout_s)
            except ConnectFailed as exc:
                elapsed_ms = (time.monotonic_ns() - started) / 1e6
                self.failures.failed()
                failed = tally.connect_failed(exc.error, exc.detail, elapsed_ms, at_s=time.time())
                self._emit([failed])
                continue
            self.failures.connected()
            self._emit([tally.connected((time.monotonic_ns() - started) / 1e6)])
            return transport, started
        return None

    # ------------------------------------------------------------------ one call
    def run_call(self) -> None:
        """One whole conversation; returns when it is over (or could not connect)."""
        self.tally.call_placed()
        connected = self._connect()
        if connected is None:
            self.tally.call_ended()
            return
        transport, connect_started = connected
        conversation = self.new_conversation()
        _calls.add(conversation)
        if _run_ending:
            conversation.hang_up_after_turn()
        stream: _Stream | None = None
        scheduler = _scheduler
        assert scheduler is not None
        try:
            stream = self.open_stream(transport, conversation, connect_started)
            scheduler.run(stream)
            if stream.closed is not None:  # a copy: the stored one would tie this frame to it
                raise stream.closed.detached()
            protocol, call = self.library.protocol, _Call(transport.call_id, self.library)
            for message in protocol.close_messages(call, stream.count, stream.call_stream):
                transport.send(message)
        except Closed as exc:
            if stream is not None:
                stream.hear()  # what was read before the close comes first
            conversation.closed(time.monotonic_ns(), exc.code, exc.reason)
        finally:
            _calls.discard(conversation)
            if stream is not None:
                stream.hear()  # read after the last frame went, or before a stop
            # Not done here means the caller was stopped (the run's stop grace ran out): the
            # turn in progress is reported as cut, neither a success nor a failure.
            conversation.cut(time.monotonic_ns())
            transport.close(1000)
            if stream is not None:
                self.tally.frames_received(stream.received)
                self.tally.stream(
                    frames=stream.count, chunk_ms=self.config.chunk_ms,
                    first_due_ns=stream.first_due, last_sent_ns=stream.last_sent,
                )  # fmt: skip
            self._forward(conversation)
            self.tally.counters(conversation.counters)
            self.tally.call_ended()

    def new_conversation(self) -> Conversation:
        """The next call's conversation: a scenario and turn plan drawn from this caller's rng."""
        plan = build_plan(choose_scenario(self.library.scenarios, self.rng), self.config, self.rng)
        return Conversation(plan, self.config)

    def open_stream(
        self, transport: Transport, conversation: Conversation, connect_started_ns: int
    ) -> _Stream:
        """Open the call on a connected ``transport``: the protocol's opening messages, the
        conversation's start, inbound messages delivered from the socket's readiness callback.
        The returned stream is ready for the frame scheduler (:meth:`FrameScheduler.run`).

        First it waits for the call's phase (:class:`FramePhases`, at most one frame), where
        the conversation then starts: its frames fall due on that phase, the first at once.
        """
        start_ns = _phases.next_start(time.monotonic_ns(), self.config.chunk_ms * 1_000_000)
        while (wait_ns := start_ns - time.monotonic_ns()) > 0:
            gevent.sleep(wait_ns / 1e9)  # a timer may fire a little early: wait again
        protocol, call = self.library.protocol, _Call(transport.call_id, self.library)
        call_stream = CallStream(protocol.stream_id(call))
        if _turn_log is not None:
            self._ids = _call_ids(transport, protocol.name, protocol.log_ids(call, call_stream))
        marks: MarkEchoes | None = None
        if protocol.echoes_marks:
            # A playback model of its own, not the conversation's: that one holds messages back
            # while a first-speech/EOS frame is in flight, and an echo's time must not wait.
            marks = MarkEchoes(self.config.agent_sample_rate, time.monotonic_ns())
        for message in protocol.open_messages(call, call_stream):
            transport.send(message)
        conversation.start(start_ns, connect_started_ns=connect_started_ns)
        stream = _Stream(self, transport, conversation, call_stream, marks)

        def on_closed(exc: Closed) -> None:
            stream.hear()  # what the agent said before it closed comes first
            if exc.protocol_error:
                self.tally.protocol_error()
                failure = Failure.PROTOCOL_ERROR
            else:
                failure = Failure.CLOSED_MID_TURN
            conversation.closed(time.monotonic_ns(), exc.code, exc.reason, failure=failure)

        transport.start_receiving(stream.take, on_closed, stream.fail)
        # The call's objects (plan, conversation, transport, stream) live as long as the call:
        # moved out of the collector's generations, no full collection scans them again. A
        # full collection paused a worker for tens of ms at 800 callers (~100 tracked objects
        # each), which is what its receive lag measured. They are still freed by reference
        # counting when the call ends, because a finished call leaves no reference cycle
        # (transport.close drops the callbacks; a test checks it).
        gc.freeze()
        return stream

    # ------------------------------------------------------------------ measurements
    def _forward(self, conversation: Conversation) -> None:
        """Record what the conversation decided so far and hand its samples to the sink."""
        events = conversation.events()
        if not events:
            return
        code = conversation.close_code
        benign = code is not None and close_is_benign(code)
        self._emit(
            self.tally.events(events, benign_close=benign, run_ended_ns=self.sink.run_ended_ns)
        )
        if _turn_log is not None and self._ids is not None:
            for event in events:
                if isinstance(event, TurnReport):
                    _turn_log.add(self._ids, event)

    def _emit(self, samples: list[RequestSample]) -> None:
        for sample in samples:
            self.sink.sample(sample.name, sample.value_ms, sample.error, sample.detail)
