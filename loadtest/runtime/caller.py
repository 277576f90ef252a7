"""One simulated call over a real WebSocket: the greenlets around the conversation core (edge).

:class:`CallDriver` connects (with capped, jittered retries), sends the ACS metadata, then
runs two greenlets until the conversation is done:

* the **receiver** reads every message the moment it arrives, stamps it with
  ``time.monotonic_ns()`` and hands it to :meth:`Conversation.receive` (classification is
  cheap and never decodes audio); it yields every few messages so a busy socket cannot starve
  the senders;
* the **sender** (the calling greenlet) sleeps until the next frame deadline, sends every due
  pre-encoded frame, and reports each send instant to :meth:`Conversation.sent`.

Measurements leave through a :class:`Sink` (the Locust plugin): request samples in
milliseconds, histograms and counters. A failing call is a measurement, never an exception.
``time.monotonic_ns`` is the same clock the agent simulator's ground truth uses.
"""

from __future__ import annotations

import random
import time
from typing import Protocol

import gevent

from loadtest.conversation import (
    Conversation,
    ConversationConfig,
    Failure,
    Frame,
    FrameKind,
    Metric,
    ReconnectBackoff,
    Sample,
    TurnReport,
    build_plan,
    choose_scenario,
)
from loadtest.metrics.voice_stats import VoiceStats
from loadtest.runtime.library import AudioLibrary
from loadtest.runtime.transport import Closed, ConnectFailed, WebSocketTransport, close_is_benign
from loadtest.settings import CallerSettings

__all__ = ["CallDriver", "Sink"]

_NS = 1_000_000_000
_YIELD_EVERY = 8  # receiver yields after this many back-to-back messages


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
        self.settings = settings
        self.library = library
        self.config = config
        self.sink = sink
        self.rng = rng
        self.backoff = ReconnectBackoff()

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
        receiver = None
        frames_sent = 0
        try:
            for message in protocol.open_messages(call):
                transport.send(message)
            conversation.start(time.monotonic_ns(), connect_started_ns=connect_started)
            receiver = gevent.spawn(self._receive_loop, transport, conversation)
            frames_sent = self._send_loop(transport, conversation)
            for message in protocol.close_messages(call, frames_sent):
                transport.send(message)
        except Closed as exc:
            conversation.closed(time.monotonic_ns(), exc.code, exc.reason)
        finally:
            if receiver is not None:
                receiver.kill(block=False)
            transport.close(1000)
            self._forward(conversation)
            self._record_counters(conversation)

    def _send_loop(self, transport: WebSocketTransport, conversation: Conversation) -> int:
        """Stream until the conversation is done; returns the number of frames sent."""
        frames, tail = self.library.frames, self.library.tail
        stats = self.sink.stats
        epoch_offset_ns = time.time_ns() - time.monotonic_ns()
        count, first_due, last_sent = 0, 0, 0
        start_ns = conversation.next_deadline_ns() or time.monotonic_ns()
        while not conversation.done:
            deadline = conversation.next_deadline_ns()
            if deadline is None:
                break
            delay_ns = deadline - time.monotonic_ns()
            if delay_ns > 0:
                gevent.sleep(delay_ns / _NS)
            due: list[Frame] = conversation.frames_due(time.monotonic_ns())
            for frame in due:
                if frame.kind is FrameKind.UTTERANCE:
                    assert frame.audio_key is not None
                    encoded = frames[frame.audio_key][frame.index]
                else:
                    encoded = tail[frame.index % len(tail)]
                count += 1
                media_ms = (frame.due_ns - start_ns) // 1_000_000
                transport.send(encoded.render(count, media_ms, frame.due_ns + epoch_offset_ns))
                last_sent = time.monotonic_ns()
                lateness_ns = conversation.sent(frame, last_sent)
                stats.observe("frame_lateness_ms", lateness_ns / 1e6)
                if count == 1:
                    first_due = frame.due_ns
            self._forward(conversation)
        if count:
            # Realised pace: audio time sent over the wall time it took (1.0 = real time).
            chunk_us = self.config.chunk_ms * 1000
            stats.count("frames_sent", count)
            stats.count("stream_due_us", count * chunk_us)
            stats.count("stream_actual_us", (last_sent - first_due) // 1000 + chunk_us)
        return count

    def _receive_loop(self, transport: WebSocketTransport, conversation: Conversation) -> None:
        tokens = (self.settings.response_tokens, self.settings.end_tokens)
        classify = self.library.protocol.classify
        stats = self.sink.stats
        burst = 0
        received = 0
        try:
            while not conversation.done:
                message = transport.recv()
                arrival = time.monotonic_ns()
                conversation.receive(classify(message, *tokens), arrival)
                received += 1
                burst += 1
                if burst >= _YIELD_EVERY:
                    burst = 0
                    gevent.sleep(0)
        except Closed as exc:
            conversation.closed(time.monotonic_ns(), exc.code, exc.reason)
        finally:
            stats.count("frames_received", received)

    # ------------------------------------------------------------------ measurements
    def _forward(self, conversation: Conversation) -> None:
        stats = self.sink.stats
        benign_close = (
            self.settings.ws_ignore_close_exceptions
            and conversation.close_code is not None
            and close_is_benign(conversation.close_code)
        )
        for event in conversation.events():
            if isinstance(event, Sample):
                self._sample(event, stats, benign_close)
            elif isinstance(event, TurnReport):
                if event.barge is not None and event.barge.audible_talk_over_ms is not None:
                    stats.observe("talk_over_ms", event.barge.audible_talk_over_ms)
                if event.answer is not None:
                    for gap in event.answer.gaps_ms:
                        stats.observe("agent_gap_ms", gap)

    def _sample(self, sample: Sample, stats: VoiceStats, benign_close: bool) -> None:
        metric, failure = sample.metric, sample.failure
        if metric is Metric.CONNECT:
            return  # measured around the upgrade itself in _connect
        if failure is Failure.CLOSED_MID_TURN and benign_close:
            stats.count("closes_ignored")  # counted, but not a failure (WS_IGNORE_CLOSE_...)
            return
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
