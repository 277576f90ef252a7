"""The caller's WebSocket transport (edge): websocket-client for the upgrade, own framing after.

websocket-client opens the connection (proxies, TLS policy, headers, subprotocol, the HTTP
upgrade) and is then out of the way: every frame goes through this module, because its
per-message cost is what limits how many callers a worker core carries (profiled: ~6.5 µs
to build and mask one 1 KB frame through ``ABNF.format``, three ``recv`` calls per inbound
message). Here:

* **send**: one bytes object per frame — header, a fresh mask key and the payload masked by
  websockets' C ``apply_mask`` (~0.7 µs for 1 KB; framing is the sans-I/O
  :mod:`loadtest.protocols.wsframes`) — written by one non-blocking ``send``.
  :meth:`WebSocketTransport.send_nowait` never yields: what the socket does not take at once
  is queued, in order, for a per-connection flusher greenlet, so one slow connection cannot
  stall the per-worker frame scheduler that calls it for every caller.
* **mask keys** are fresh per frame and come from ``os.urandom`` (RFC 6455 §5.3): one 4 KiB
  read is cut into the keys of the next 1,024 frames, so a frame takes one from a list.
* **receive**: no receiver greenlet. The socket's read callback
  (:meth:`WebSocketTransport.start_receiving`) runs when it is readable, from gevent's hub
  or from the frame scheduler between two sends (:mod:`loadtest.runtime.readiness`): one
  ``recv`` of up to 32 KiB, every complete frame in it parsed (:func:`parse_frames`, a pure
  function), the messages handed over with the instant they arrived — no greenlet switch,
  watcher start/stop or failed ``recv`` per message. Pings are answered, fragmented messages
  reassembled, a close frame is echoed and reported after the messages that preceded it.
* **arrival stamps**: on Linux over plain TCP the read is a ``recvmsg`` that also returns the
  kernel's receive timestamp (``SO_TIMESTAMPNS``) of the last segment it took, so a read
  that a busy worker makes late still carries the instant the data arrived: the caller's
  half of a TTFB or barge-in measurement does not grow with the load. Several messages in
  one read share the stamp of the last one. Over TLS the SSL object reads the socket itself
  (it has no ``recvmsg``), so before each read the transport peeks at the OS socket under
  it for the stamp of the segment that completes the TLS record that read will decrypt
  (:class:`_RecordStamps`) — the same instant, for one ``recvmsg(MSG_PEEK)`` more per read
  (two when more records wait behind it).
  Segments that wait unread are merged by the kernel under the last one's stamp, so what is
  read late together shares the latest arrival. Where the kernel gives no stamp (not
  Linux), the stamp is the instant the read returned.
  Text is checked as UTF-8 by ``bytes.decode`` (C speed; websocket-client's pure-Python
  validator is the receive trap that starves the senders, hence ``skip_utf8_validation``).
* **strict**: what RFC 6455 says a client must fail the connection for — a reserved opcode,
  RSV bits, a fragmented or oversized control frame, text that is not UTF-8, a close code no
  endpoint may send, a new message inside a fragmented one, a frame or message larger than
  ``WS_MAX_MESSAGE_BYTES`` (refused from its header, never buffered) — ends the connection
  with a close frame of the matching code (1002, 1007, 1009) and a :class:`Closed` whose
  ``protocol_error`` is set: the call fails as ``protocol_error``.

Errors translate at this boundary: the upgrade's into :class:`ConnectFailed` (a stable error
name: a *measurement*), everything after into :class:`Closed`. Under gevent every blocking
wait here yields cooperatively; the socket itself is non-blocking.
"""

from __future__ import annotations

import _socket
import contextlib
import functools
import socket
import ssl
import struct
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import certifi
import gevent
import websocket
from gevent.socket import wait as _wait

from loadtest.protocols.wsframes import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Closed,
    close_payload,
    encode_frame,
    parse_frames,
)
from loadtest.runtime.readiness import ReadReadiness, read_readiness
from loadtest.settings import CallerSettings

__all__ = [
    "Closed",  # from loadtest.protocols.wsframes: the errors of this boundary live together
    "ConnectFailed",
    "WebSocketTransport",
    "close_is_benign",
]

_BENIGN_CLOSE_CODES = frozenset({1000, 1001, 1006})


def _violation(code: int, reason: str) -> Closed:
    return Closed(code, reason, protocol_error=True)


_READ_BYTES = 32768  # one read per readiness event: bounds the work done in one callback
# Linux's SO_TIMESTAMPNS (asm-generic), which Python's socket module does not name
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
_TIMESPEC = struct.Struct("@qq")
_STAMP_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
# An arrival stamp further back than this is not believed (the wall clock, which the kernel
# stamps with, was stepped): the read instant stands instead.
_MAX_WAIT_NS = 1_000_000_000
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_OS_RECVMSG_INTO = _socket.socket.recvmsg_into
# A TLS record (RFC 8446 §5.1, RFC 5246 §6.2): content type, version, 16-bit length, body.
_TLS_HEADER = 5
_TLS_TYPES = frozenset({20, 21, 22, 23})  # change_cipher_spec, alert, handshake, app data
_TLS_RECORD_MAX = _TLS_HEADER + 16384 + 2048  # the largest record a peer may send
# Where the peeks copy to: one for the process, as reads never interleave (one event loop).
_peeked = memoryview(bytearray(_TLS_RECORD_MAX))


def _arrival_ns(ancillary: list[Any]) -> int:
    """When a read's data arrived, on the monotonic clock: the kernel's stamp (wall clock)
    moved back by how long ago it was, or now if the read carries none."""
    read_ns = time.monotonic_ns()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            waited_ns: int = time.time_ns() - (seconds * 1_000_000_000 + nanoseconds)
            if 0 < waited_ns < _MAX_WAIT_NS:
                return read_ns - waited_ns
    return read_ns


class _RecordStamps:
    """The kernel's arrival stamps of a TLS connection's records, whose SSL object reads the
    socket itself: before each read, :meth:`stamp` peeks at the OS socket under it
    (``MSG_PEEK``: nothing is taken) for the stamp of the segment that completes the record
    the read will decrypt.

    OpenSSL takes one record per read (Python leaves its read-ahead off): a whole one — whose
    plaintext it may hand over in parts (``pending``) — or, when only part of it has arrived,
    what there is, which it keeps until the rest comes. So the socket's bytes start at a
    record's header (``missing`` 0), or ``missing`` bytes before the end of the record
    OpenSSL holds part of. Where that is unknown (a split header, bytes that are no header),
    the stamp is of the last segment there, until a read returns data again.
    """

    __slots__ = ("missing", "peek")

    def __init__(self, peek: Callable[..., tuple[int, list[Any], int, Any]]) -> None:
        self.peek = peek  # the OS socket's recvmsg_into
        self.missing = 0  # bytes that complete OpenSSL's partial record; 0: none; -1: unknown

    def stamp(self) -> int:
        """When the record that the next read takes arrived (monotonic clock), or now; also
        what the read leaves missing if it returns no data."""
        missing, peek = self.missing, self.peek
        try:
            if missing > 0:
                size, ancillary, _, _ = peek([_peeked[:missing]], _STAMP_SPACE, socket.MSG_PEEK)
                self.missing = missing - size
                return _arrival_ns(ancillary)
            size, ancillary, _, _ = peek([_peeked], _STAMP_SPACE, socket.MSG_PEEK)
            if missing == 0:
                if size < _TLS_HEADER or _peeked[0] not in _TLS_TYPES or _peeked[1] != 3:
                    self.missing = -1
                else:
                    record = _TLS_HEADER + (_peeked[3] << 8 | _peeked[4])
                    if size > record:  # records behind it: the stamp of this one's end
                        _, ancillary, _, _ = peek([_peeked[:record]], _STAMP_SPACE, socket.MSG_PEEK)
                    self.missing = max(record - size, 0)
        except OSError:  # nothing there, or the socket broke: the read itself will say
            return time.monotonic_ns()
        return _arrival_ns(ancillary)

    def read(self) -> None:
        """The read returned data: OpenSSL took a whole record, the socket is at a header."""
        self.missing = 0


class ConnectFailed(Exception):
    """The upgrade did not complete. ``error`` is a stable name for the failure event."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


def close_is_benign(code: int) -> bool:
    """1000 normal, 1001 going away, 1006 dropped without a close frame."""
    return code in _BENIGN_CLOSE_CODES


# ---------------------------------------------------------------------- connection set-up


def _sslopt(settings: CallerSettings) -> dict[str, object]:
    if settings.ws_insecure:
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    return {
        "cert_reqs": ssl.CERT_REQUIRED,
        "check_hostname": True,
        "ca_certs": settings.ws_ca_bundle or certifi.where(),
    }


def _classify_connect_error(exc: BaseException) -> ConnectFailed:
    if isinstance(exc, websocket.WebSocketBadStatusException):
        status = getattr(exc, "status_code", 0)
        return ConnectFailed(f"http_{status}", f"upgrade refused with HTTP {status}")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailed("connect_refused", "connection refused (is the agent running?)")
    if isinstance(exc, socket.gaierror):
        return ConnectFailed("dns_error", f"host not found ({exc.strerror})")
    if isinstance(exc, ssl.SSLError):
        return ConnectFailed("tls_error", str(exc.reason or exc))
    if isinstance(exc, TimeoutError | socket.timeout | websocket.WebSocketTimeoutException):
        return ConnectFailed("connect_timeout", "no upgrade within the timeout")
    if isinstance(exc, OSError):
        return ConnectFailed("connect_error", exc.strerror or str(exc))
    return ConnectFailed("connect_error", f"{type(exc).__name__}: {exc}")


class WebSocketTransport:
    """One caller connection.

    Call order: :meth:`connect`; :meth:`start_receiving` with the callbacks that take every
    inbound message (they run straight from the socket's readiness, in gevent's hub or the
    frame scheduler: no greenlet switch per message, so they must not block);
    :meth:`send_nowait` / :meth:`send` from any greenlet; :meth:`close` once at the end (it
    stops receiving first).
    """

    def __init__(self, settings: CallerSettings, *, call_id: str | None = None) -> None:
        self.settings = settings
        self.call_id = call_id or str(uuid.uuid4())
        self.correlation_id = str(uuid.uuid4())
        self._sock: Any = None
        self._tls = False
        self._read_watcher: Any = None  # waits of the close handshake
        self._write_watcher: Any = None  # the flusher's waits
        self._fd = -1
        self._readiness: ReadReadiness | None = None  # where start_receiving registered
        self._resume: Any = None  # TLS read that must write first: resumes reading
        self._on_messages: Callable[[int, list[str | bytes]], None] | None = None
        self._on_closed: Callable[[Closed], None] | None = None
        self._on_error: Callable[[BaseException], None] | None = None
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_bytes = 0
        self._closed: Closed | None = None  # a close frame was read
        self._close_sent = False
        self._backlog: deque[bytes] = deque()  # frames the socket did not take yet, in order
        self._flusher: gevent.Greenlet | None = None
        self._broken: Closed | None = None  # a send failed: the connection is gone
        self._send_raw: Callable[[bytes], int] | None = None  # None: not writable (any more)
        self._recv_raw: Callable[[int], bytes] | None = None
        self._recvmsg: Callable[[int, int], tuple[bytes, list[Any], int, Any]] | None = None
        self._records: _RecordStamps | None = None  # TLS: arrival stamps by peeking
        self._arrived_ns = 0  # when the data of the last read arrived (monotonic clock)
        self._max_bytes = settings.ws_max_message_bytes
        self._failed = False  # the peer broke the protocol: the connection was failed

    def _headers(self) -> list[str]:
        headers = [
            f"x-ms-call-connection-id: {self.call_id}",
            f"x-ms-call-correlation-id: {self.correlation_id}",
        ]
        headers += [f"{name}: {value}" for name, value in self.settings.ws_headers]
        if self.settings.ws_auth_token:
            headers.append(f"Authorization: Bearer {self.settings.ws_auth_token}")
        return headers

    def connect(self, url: str, timeout_s: float) -> None:
        """Open the connection; raises :class:`ConnectFailed`."""
        subprotocols = [self.settings.ws_subprotocol] if self.settings.ws_subprotocol else None
        try:
            ws = websocket.create_connection(
                url,
                timeout=timeout_s,
                header=self._headers(),
                sslopt=_sslopt(self.settings),
                skip_utf8_validation=True,
                subprotocols=subprotocols,
            )
        except Exception as exc:  # every failure here is a measurement, never a crash
            raise _classify_connect_error(exc) from exc
        sock = ws.sock
        if sock is None:
            raise ConnectFailed("connect_error", "no socket after the upgrade")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(0.0)  # never block inside a call: waits go through the watchers
        self._bind(sock)

    def _bind(self, sock: Any) -> None:
        loop = gevent.get_hub().loop
        self._sock = sock
        self._tls = hasattr(sock, "pending")
        # The OS socket under gevent's wrapper (non-blocking already; what gevent's own
        # servers use): plain TCP reads and writes it, one Python call less per frame; TLS
        # goes through the SSL object and only peeks at it for arrival stamps.
        raw = getattr(sock, "_sock", sock)  # (the standard library's SSL socket is one)
        io = sock if self._tls else raw
        self._send_raw, self._recv_raw = io.send, io.recv
        self._recvmsg = self._records = None
        if _SO_TIMESTAMPNS is not None and _STAMP_SPACE:
            try:
                raw.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            except OSError:  # the kernel does not stamp: reads are stamped when they return
                pass
            else:
                if self._tls:
                    # the OS socket's own method: an SSL socket's refuses to be called
                    self._records = _RecordStamps(functools.partial(_OS_RECVMSG_INTO, raw))
                else:
                    self._recvmsg = raw.recvmsg
        self._read_watcher = loop.io(sock.fileno(), 1)
        self._write_watcher = loop.io(sock.fileno(), 2)
        self._fd = sock.fileno()
        self._resume = loop.io(self._fd, 2)

    # ------------------------------------------------------------------ send

    def send_nowait(self, message: str | bytes) -> None:
        """Send one message (``str``: text frame, ``bytes``: binary) without ever yielding.

        What the socket cannot take right now is queued for the flusher greenlet, in order.
        Raises :class:`Closed` if the connection is gone.
        """
        if isinstance(message, str):
            frame = encode_frame(message.encode(), OP_TEXT)
        else:
            frame = encode_frame(message, OP_BINARY)
        self._write(frame)

    def send(self, message: str | bytes) -> None:
        """Send one message and wait until the socket took it (may yield)."""
        self.send_nowait(message)
        if self._flusher is not None:
            self._flusher.join()
            if self._broken is not None:
                raise self._broken.detached()

    def _write(self, frame: bytes) -> None:
        send = self._send_raw
        if send is None or self._backlog:
            if self._broken is not None:
                raise self._broken.detached()
            if send is None:
                raise Closed(1006, "not connected")
            self._backlog.append(frame)
            return
        try:
            sent = send(frame)
        except _WOULD_BLOCK:
            sent = 0
        except OSError as exc:
            self._broken = Closed(1006, f"send failed: {exc}")
            self._send_raw = None
            raise self._broken.detached() from exc
        if sent < len(frame):
            # TLS: a retried write must start with the same bytes, so the whole frame waits.
            self._backlog.append(frame if self._tls else frame[sent:])
            self._flusher = gevent.spawn(self._flush)

    def _flush(self) -> None:
        backlog, sock = self._backlog, self._sock
        try:
            while backlog:
                chunk = backlog[0]
                try:
                    sent = sock.send(chunk)
                except _WOULD_BLOCK:
                    _wait(self._write_watcher)
                    continue
                if sent < len(chunk):
                    backlog[0] = chunk[sent:]
                    if not self._tls:
                        continue
                    _wait(self._write_watcher)
                else:
                    backlog.popleft()
        except OSError as exc:
            self._broken = Closed(1006, f"send failed: {exc}")
            self._send_raw = None
            backlog.clear()
        finally:
            self._flusher = None

    # ------------------------------------------------------------------ receive

    def start_receiving(
        self,
        on_messages: Callable[[int, list[str | bytes]], None],
        on_closed: Callable[[Closed], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Deliver every inbound data message from now on, straight from the event loop.

        ``on_messages(arrived_ns, messages)`` gets the instant the read's data arrived (on
        the ``time.monotonic_ns()`` clock; see the module's docstring on arrival stamps) and
        the messages it completed, oldest first (text as ``str``,
        never UTF-8-validated; binary as ``bytes``); pings are answered here. ``on_closed``
        runs once with the peer's close code (after the messages that preceded the close
        frame; the close is echoed) or 1006 when the socket dropped; ``on_error`` once if a
        callback raised anything else. Either ends receiving. The callbacks must not block.
        """
        if self._sock is None:
            raise Closed(1006, "not connected")
        self._on_messages, self._on_closed, self._on_error = on_messages, on_closed, on_error
        self._readiness = read_readiness()
        self._readiness.watch(self._fd, self._on_readable)

    def stop_receiving(self) -> None:
        """No more callbacks (idempotent)."""
        self._on_messages = None
        if self._readiness is not None:
            self._readiness.unwatch(self._fd, self._on_readable)
            self._resume.stop()

    def _on_readable(self) -> None:
        """One read per readiness event: fair to the other connections and the scheduler."""
        try:
            while True:
                data = self._recv_nowait()
                if data is None:
                    return
                messages = self._messages(data)
                callback = self._on_messages
                if messages and callback is not None:
                    callback(self._arrived_ns, messages)
                if self._closed is not None:
                    raise self._closed.detached()
                if not (self._tls and self._sock.pending()):  # TLS: OpenSSL may hold more
                    return
        except Closed as exc:
            self.stop_receiving()
            if exc.protocol_error:
                self._fail(exc.code)
            if self._on_closed is not None:
                self._on_closed(exc)
        except Exception as exc:  # a bug in a callback: hand it to the call, not to the hub
            self.stop_receiving()
            if self._on_error is not None:
                self._on_error(exc)

    def _recv_nowait(self) -> bytes | None:
        """One read: the bytes (``_arrived_ns``: when they arrived), ``None`` if there are
        none yet; raises :class:`Closed`."""
        recv = self._recv_raw
        if recv is None:
            raise Closed(1006, "not connected")
        try:
            recvmsg, records = self._recvmsg, self._records
            if recvmsg is not None:
                data, ancillary, _, _ = recvmsg(_READ_BYTES, _STAMP_SPACE)
                self._arrived_ns = _arrival_ns(ancillary)
            elif records is None:
                data = recv(_READ_BYTES)
                self._arrived_ns = time.monotonic_ns()
            elif self._sock.pending():  # the rest of a record already read: its stamp stands
                data = recv(_READ_BYTES)
            else:
                arrived_ns = records.stamp()
                data = recv(_READ_BYTES)
                records.read()
                self._arrived_ns = arrived_ns
        except ssl.SSLWantWriteError:  # TLS needs to write first: resume when writable
            if self._readiness is not None:
                self._readiness.unwatch(self._fd, self._on_readable)
            self._resume.start(self._resume_reading)
            return None
        except _WOULD_BLOCK:
            return None
        except OSError as exc:
            raise Closed(1006, f"{type(exc).__name__}: {exc}".strip()) from exc
        if not data:
            raise Closed(1006, "connection dropped without a close frame")
        return data

    def _resume_reading(self) -> None:
        self._resume.stop()
        if self._sock is not None and self._on_messages is not None and self._readiness is not None:
            self._readiness.watch(self._fd, self._on_readable)
            self._on_readable()

    def _fail(self, code: int) -> None:
        """Fail the connection (RFC 6455 §7.1.7): close frame with ``code``, read no more."""
        self._failed = True
        self._buffer.clear()
        self._fragments, self._fragment_opcode, self._fragment_bytes = [], 0, 0
        self._send_close(code)

    def _messages(self, data: bytes) -> list[str | bytes]:
        buffer, limit = self._buffer, self._max_bytes
        if buffer:
            buffer += data
            frames, used = parse_frames(buffer, limit)
            del buffer[:used]
        else:  # the common case: parse the read itself, keep only a trailing partial frame
            frames, used = parse_frames(data, limit)
            if used < len(data):
                buffer += data[used:]
        messages: list[str | bytes] = []
        for opcode, fin, payload in frames:
            if opcode >= OP_CLOSE:
                if opcode == OP_PING:
                    with contextlib.suppress(Closed):
                        self._write(encode_frame(payload, OP_PONG))
                elif opcode == OP_CLOSE:
                    code, reason = close_payload(payload)
                    self._closed = Closed(code, reason)
                    self._send_close(1000)
                    break
                continue
            if opcode == OP_CONT:
                if not self._fragment_opcode:
                    raise _violation(1002, "protocol error: continuation without a first frame")
                self._fragments.append(payload)
                self._fragment_bytes += len(payload)
                if self._fragment_bytes > limit:
                    raise _violation(1009, f"message over the {limit}-byte limit")
                if not fin:
                    continue
                opcode, payload = self._fragment_opcode, b"".join(self._fragments)
                self._fragments, self._fragment_opcode, self._fragment_bytes = [], 0, 0
            elif self._fragment_opcode:
                raise _violation(1002, "protocol error: a new message inside a fragmented one")
            elif not fin:
                self._fragment_opcode = opcode
                self._fragments, self._fragment_bytes = [payload], len(payload)
                continue
            if opcode == OP_TEXT:
                try:
                    messages.append(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    raise _violation(1007, "protocol error: text message is not UTF-8") from None
            else:
                messages.append(payload)
        return messages

    # ------------------------------------------------------------------ close

    def _send_close(self, code: int) -> None:
        if self._close_sent or self._broken is not None:
            return
        self._close_sent = True
        with contextlib.suppress(Closed):
            self._write(encode_frame(struct.pack("!H", code), OP_CLOSE))

    def close(self, code: int = 1000, timeout_s: float = 1.0) -> None:
        """Close politely: stop receiving, send a close frame, wait up to ``timeout_s`` for the
        peer's, then shut the socket. Never raises."""
        sock = self._sock
        if sock is None:
            return
        self.stop_receiving()
        try:
            self._send_close(code)
            with gevent.Timeout(timeout_s, False):
                if self._flusher is not None:
                    self._flusher.join()
                while self._closed is None and self._broken is None and not self._failed:
                    data = self._recv_nowait()
                    if data is None:
                        _wait(self._read_watcher)
                    else:
                        self._messages(data)
        except Exception:  # closing a dead socket is not an error
            pass
        finally:
            self._sock = self._send_raw = self._recv_raw = self._recvmsg = self._records = None
            self._on_closed = self._on_error = None  # the call's callbacks: no cycle left
            if self._flusher is not None:
                self._flusher.kill(block=False)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
