"""The caller's WebSocket transport on websocket-client (edge).

Thin on purpose: connect with the configured headers and TLS policy, send pre-built text
frames, receive whole messages with their opcode, and translate websocket-client and socket
errors into :class:`ConnectFailed` (with a stable error name, a *measurement*) or
:class:`Closed`. Under gevent (the Locust worker) every call here yields cooperatively.

Receive fast path: ``skip_utf8_validation=True``; websocket-client otherwise validates UTF-8
in pure Python (~160 µs per 1 KB message), enough to starve the senders under load.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import uuid
from dataclasses import dataclass

import certifi
import websocket

from loadtest.settings import CallerSettings

__all__ = ["Closed", "ConnectFailed", "WebSocketTransport", "close_is_benign"]

_BENIGN_CLOSE_CODES = frozenset({1000, 1001, 1006})


class ConnectFailed(Exception):
    """The upgrade did not complete. ``error`` is a stable name for the failure event."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Closed(Exception):
    """The connection ended: a close frame (``code``) or a dropped socket (1006)."""

    code: int
    reason: str

    def __str__(self) -> str:
        return f"closed {self.code} {self.reason}".strip()


def close_is_benign(code: int) -> bool:
    """1000 normal, 1001 going away, 1006 dropped without a close frame."""
    return code in _BENIGN_CLOSE_CODES


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
    """One caller connection. Create, :meth:`connect`, then send from one greenlet and
    :meth:`recv` from another; :meth:`close` from either."""

    def __init__(self, settings: CallerSettings, *, call_id: str | None = None) -> None:
        self.settings = settings
        self.call_id = call_id or str(uuid.uuid4())
        self.correlation_id = str(uuid.uuid4())
        self._ws: websocket.WebSocket | None = None

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
                enable_multithread=True,  # a pong from the receiver must not interleave a send
                subprotocols=subprotocols,
            )
        except Exception as exc:  # every failure here is a measurement, never a crash
            raise _classify_connect_error(exc) from exc
        ws.settimeout(None)
        sock = ws.sock
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._ws = ws

    def send(self, message: str | bytes) -> None:
        """Send one message (``str``: text frame, ``bytes``: binary frame); raises
        :class:`Closed` if the connection is gone."""
        ws = self._ws
        if ws is None:
            raise Closed(1006, "not connected")
        try:
            if isinstance(message, str):
                ws.send(message)
            else:
                ws.send_bytes(message)
        except (websocket.WebSocketConnectionClosedException, OSError) as exc:
            raise Closed(1006, f"send failed: {exc}") from exc

    def recv(self) -> str | bytes:
        """Block until a whole data message arrives: ``str`` for text, ``bytes`` for binary.

        Raises :class:`Closed` with the peer's close code, or 1006 when the socket dropped.
        """
        ws = self._ws
        if ws is None:
            raise Closed(1006, "not connected")
        try:
            while True:
                opcode, frame = ws.recv_data_frame(True)
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    return bytes(frame.data).decode("utf-8", "replace")
                if opcode == websocket.ABNF.OPCODE_BINARY:
                    return bytes(frame.data)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    data = bytes(frame.data or b"")
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    raise Closed(code, data[2:].decode("utf-8", "replace"))
        except Closed:
            raise
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            raise Closed(1006, f"{type(exc).__name__}: {exc}".strip()) from exc

    def close(self, code: int = 1000) -> None:
        """Close politely; never raises."""
        ws, self._ws = self._ws, None
        if ws is None:
            return
        try:
            ws.close(status=code, timeout=1)
        except Exception:  # closing a dead socket is not an error
            with contextlib.suppress(Exception):
                ws.shutdown()  # type: ignore[no-untyped-call]
