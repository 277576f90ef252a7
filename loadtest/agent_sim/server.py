"""The agent simulator's asyncio edge: WebSocket server, pacing timers, signals.

All decisions are made by :class:`~loadtest.agent_sim.session.AgentSession`; this module
takes messages (stamped with ``time.monotonic_ns()`` as they are read, and delivered without
a task switch by :class:`~.edge.DirectConnection`), performs the actions a session returns,
and wakes each session at its next deadline through the shared :class:`~.edge.Pacer`.

Reply frames are framed once with websockets' own ``Frame.serialize`` — per process, or per
call when the protocol's messages name the stream (Twilio ``streamSid``) — and written
straight to the transport of an OPEN connection: data frames of a connection without
extensions (``compression=None``) are self-contained, so this equals ``send()`` minus the
per-frame framing work, which was a quarter of the simulator's CPU at capacity. Rare
messages (transcripts, fault garbage) go through :func:`broadcast` (synchronous send).

``GET /healthz`` answers ``200 ok`` on the same port; other paths than ``--path`` get 404;
the ``refuse_503`` fault answers the upgrade with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import time
import uuid
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosedError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from loadtest.agent_sim.actions import (
    Abort,
    Action,
    Close,
    SendAudio,
    SendBinary,
    SendStop,
    SendText,
    TurnRecord,
)
from loadtest.agent_sim.audio import ReplyAudio
from loadtest.agent_sim.config import AgentSettings, FaultKind
from loadtest.agent_sim.edge import DirectConnection, Pacer
from loadtest.agent_sim.ground_truth import GroundTruthWriter
from loadtest.agent_sim.session import AgentSession
from loadtest.agent_sim.stats import AgentStats
from loadtest.protocols.base import WireMessage

__all__ = ["HEALTH_PATH", "AgentServer"]

HEALTH_PATH = "/healthz"
_LOOP_LAG_INTERVAL_S = 0.1
log = logging.getLogger("loadtest.agent_sim")


@dataclass(frozen=True, slots=True)
class _Accepted:
    connection_id: str
    correlation_id: str | None
    rng: random.Random
    fault: FaultKind | None


class _Call:
    """One connection's glue: session + timer + writes. Runs entirely on the event loop."""

    __slots__ = ("deadline_ns", "frames", "server", "session", "slot", "stop", "ws")

    def __init__(self, server: AgentServer, ws: ServerConnection, session: AgentSession) -> None:
        self.server = server
        self.ws = ws
        self.session = session
        self.slot: int | None = None  # the Pacer's millisecond this call waits for
        self.deadline_ns: int | None = None
        self.frames: tuple[bytes, ...] = ()
        self.stop = b""

    def on_message(self, message: str | bytes, now_ns: int) -> None:
        session = self.session
        actions = session.receive(message, now_ns)
        if actions:
            self.execute(actions)
        if session.replanned or actions:
            self.after_step()

    def on_timer(self) -> None:
        self.deadline_ns = None
        actions = self.session.poll(time.monotonic_ns())
        if actions:
            self.execute(actions)
        self.after_step()

    def after_step(self) -> None:
        session = self.session
        if session.has_records:
            self.server.emit_records(session.take_records())
        deadline = session.next_deadline_ns()
        if deadline == self.deadline_ns:
            return
        self.deadline_ns = deadline
        if deadline is None:
            self.slot = None
        else:
            self.server.pacer.wake(self, deadline)

    def execute(self, actions: list[Action]) -> None:
        ws = self.ws
        for action in actions:
            if type(action) is SendAudio:  # nearly every action: the cheapest test first
                if not self.frames:
                    self.frames, self.stop = self.server.call_wire(self.session)
                if ws.protocol.state is State.OPEN and not ws.transport.is_closing():
                    ws.transport.write(self.frames[action.frame])
            elif isinstance(action, SendStop):
                if not self.stop:
                    self.frames, self.stop = self.server.call_wire(self.session)
                if ws.state is State.OPEN and not ws.transport.is_closing():
                    ws.transport.write(self.stop)
            elif isinstance(action, SendText):
                broadcast((ws,), action.text)
            elif isinstance(action, SendBinary):
                broadcast((ws,), action.data)
            elif isinstance(action, Close):
                self.server.spawn(ws.close(action.code, action.reason))
            elif isinstance(action, Abort):
                _reset(ws)

    def finish(self, now_ns: int) -> None:
        self.slot = None
        self.session.close(now_ns)
        records = self.session.take_records()
        if records:
            self.server.emit_records(records)


def _text_frame(utf8: bytes) -> bytes:
    """A complete unmasked server→client text frame carrying ``utf8``."""
    return Frame(Opcode.TEXT, utf8).serialize(mask=False)


def _wire(message: WireMessage) -> bytes:
    """A complete unmasked server→client frame: text for ``str``, binary for ``bytes``."""
    if isinstance(message, str):
        return _text_frame(message.encode())
    return Frame(Opcode.BINARY, message).serialize(mask=False)


def _reset(ws: ServerConnection) -> None:
    """Abort with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


class AgentServer:
    """The simulator server. ``await start()`` binds and returns the port; ``await stop()``
    closes every call with 1001 and waits for the handlers to finish."""

    def __init__(
        self,
        settings: AgentSettings,
        reply_audio: ReplyAudio,
        *,
        stats: AgentStats | None = None,
        ground_truth: GroundTruthWriter | None = None,
    ) -> None:
        self.settings = settings
        self.reply_audio = reply_audio
        self.codec = reply_audio.codec
        self.wire_frames: dict[int, tuple[bytes, ...]] = {}
        self.wire_stop = b""
        if not self.codec.stream_bound:  # the same bytes for every call: frame them once
            self.wire_frames = {
                rate: self._frame_audio(frames) for rate, frames in reply_audio.frames.items()
            }
            self.wire_stop = _wire(self.codec.stop(None))
        self.stats = stats if stats is not None else AgentStats()
        self._ground_truth = ground_truth
        self._accepted: weakref.WeakKeyDictionary[ServerConnection, _Accepted] = (
            weakref.WeakKeyDictionary()
        )
        self._ordinal = 0
        self.pacer = Pacer()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: Server | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        s = self.settings
        self._server = await serve(
            self._handle,
            s.host,
            s.port,
            process_request=self._process_request,
            max_size=s.max_message_bytes,
            compression=None,
            create_connection=DirectConnection,
            reuse_port=s.reuse_port or None,
            ssl=s.tls_context(),
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._lag_task = asyncio.create_task(self._watch_loop_lag())
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _frame_audio(self, bodies: tuple[bytes, ...]) -> tuple[bytes, ...]:
        opcode = Opcode.BINARY if self.codec.binary_audio else Opcode.TEXT
        return tuple(Frame(opcode, body).serialize(mask=False) for body in bodies)

    def call_wire(self, session: AgentSession) -> tuple[tuple[bytes, ...], bytes]:
        """Framed reply frames and stop signal for ``session``'s stream (its format must be
        known: the session only sends once its stream is open)."""
        rate = session.sample_rate
        assert rate is not None
        if not self.codec.stream_bound:
            return self.wire_frames[rate], self.wire_stop
        bodies = self.codec.bind_audio(self.reply_audio.frames[rate], session.stream_id)
        return self._frame_audio(bodies), _wire(self.codec.stop(session.stream_id))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the server keeps a reference to (awaited on stop)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def emit_records(self, records: list[TurnRecord]) -> None:
        if self._ground_truth is None:
            return
        for record in records:
            self._ground_truth.write(record)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == HEALTH_PATH:
            return connection.respond(HTTPStatus.OK, "ok\n")
        if path != self.settings.path:
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"no such path; the media stream is at {self.settings.path}\n"
            )
        connection_id = request.headers.get("x-ms-call-connection-id")
        correlation_id = request.headers.get("x-ms-call-correlation-id")
        self._ordinal += 1
        if connection_id:
            rng = random.Random(f"{self.settings.seed}/{connection_id}")
        else:
            process = self.settings.process_index
            key = f"#{self._ordinal}" if not process else f"#{process}.{self._ordinal}"
            rng = random.Random(f"{self.settings.seed}/{key}")
            connection_id = str(uuid.uuid4())
        fault = self.settings.policy.faults.draw_connection(rng)
        if fault is FaultKind.REFUSE_503:
            self.stats.faults[fault.value] += 1
            log.info("fault", extra={"fields": {"fault": fault.value, "call": connection_id}})
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "injected fault: service unavailable\n"
            )
        self._accepted[connection] = _Accepted(connection_id, correlation_id, rng, fault)
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        accepted = self._accepted.pop(ws, None)
        if accepted is None:  # pragma: no cover - process_request always runs first
            accepted = _Accepted(str(uuid.uuid4()), None, random.Random(), None)
        stats = self.stats
        stats.connections_total += 1
        stats.active_connections += 1
        fields: dict[str, object] = {
            "call": accepted.connection_id,
            "correlation": accepted.correlation_id,
            "peer": _peer(ws),
        }
        log.info("call open", extra={"fields": fields})
        session: AgentSession | None = None
        try:
            if accepted.fault is FaultKind.CLOSE_BEFORE_METADATA:
                stats.faults[accepted.fault.value] += 1
                log.info("fault", extra={"fields": {**fields, "fault": accepted.fault.value}})
                await ws.close(CloseCode.INTERNAL_ERROR, "injected fault: close before metadata")
                return
            session = AgentSession(
                accepted.connection_id,
                self.settings.policy,
                accepted.rng,
                stats,
                correlation_id=accepted.correlation_id,
                codec=self.codec,
            )
            await self._run_call(ws, session)
        finally:
            stats.active_connections -= 1
            code = ws.close_code if ws.close_code is not None else CloseCode.ABNORMAL_CLOSURE
            stats.closes[str(int(code))] += 1
            fields["close_code"] = int(code)
            if session is not None:
                fields["bad_inputs"] = dict(session.bad_inputs)
                if session.stream_id:
                    fields["stream"] = session.stream_id  # e.g. Twilio's streamSid
            log.info("call closed", extra={"fields": fields})

    async def _run_call(self, ws: ServerConnection, session: AgentSession) -> None:
        call = _Call(self, ws, session)
        actions = session.start(time.monotonic_ns())
        if actions:
            call.execute(actions)
        call.after_step()
        assert isinstance(ws, DirectConnection)
        ws.deliver_to(call.on_message)
        try:
            async for message in ws:  # what the fast path handed to websockets (see .edge)
                call.on_message(message, time.monotonic_ns())
        except ConnectionClosedError as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                session.note_bad_input("oversized")
        finally:
            call.finish(time.monotonic_ns())

    async def _watch_loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(_LOOP_LAG_INTERVAL_S)
            self.stats.record_loop_lag(max(0.0, loop.time() - started - _LOOP_LAG_INTERVAL_S))


def _peer(ws: ServerConnection) -> str:
    address = ws.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
