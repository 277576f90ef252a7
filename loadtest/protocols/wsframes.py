"""RFC 6455 framing, both directions, sans-I/O: bytes in, frames or messages out.

Both edges do their own framing on their hot paths, because a general WebSocket library's
per-message cost is what limits how many calls one core carries:

* the **caller** (``loadtest/runtime/transport.py``) builds final masked client frames in one
  bytes object (:func:`encode_frame`, mask keys fresh from ``os.urandom`` per RFC 6455 §5.3)
  and parses the server's frames (:func:`parse_frames`);
* the **agent simulator** (``loadtest/agent_sim/edge.py``) cuts the common client frames out
  of its byte stream (:class:`FrameCutter`) and leaves everything else to websockets.

Masking uses websockets' C ``apply_mask`` (pure Python where its wheel was not built).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

try:  # the C accelerator shipped in websockets' wheels; pure Python where it was not built
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - depends on the installed wheel
    from websockets.utils import apply_mask

__all__ = [
    "MAX_MESSAGE_BYTES",
    "OPCODES",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Closed",
    "Control",
    "FrameCutter",
    "Message",
    "close_code_allowed",
    "close_payload",
    "encode_frame",
    "parse_frames",
]

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OPCODES = frozenset({OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})
"""The opcodes RFC 6455 defines; the others are reserved (§5.2): receiving one fails the
connection."""
MAX_MESSAGE_BYTES = 1 << 20
"""The caller's default limit (``WS_MAX_MESSAGE_BYTES``): a larger server frame or message
fails the connection (1009). Agent messages are 20–100 ms audio chunks (a few KiB) and small
JSON; a megabyte is far beyond a legitimate one."""
_MAX_CONTROL_BYTES = 125  # RFC 6455 §5.5
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


@dataclass(frozen=True, slots=True)
class Closed(Exception):
    """The connection ended: a close frame (``code``) or a dropped socket (1006).

    ``protocol_error``: the caller failed the connection because the peer broke RFC 6455
    (``code`` is then the one the caller closes with: 1002, 1007 or 1009).
    """

    code: int
    reason: str
    protocol_error: bool = False

    def __str__(self) -> str:
        return f"closed {self.code} {self.reason}".strip()

    def detached(self) -> Closed:
        """The same error without traceback, cause or context: the one to store or raise
        again. A caught exception holds the frames it passed through (and, through the
        chained socket error, the frames below them), their locals among them the object
        that would store it: a reference cycle that keeps a finished call alive."""
        return Closed(self.code, self.reason, self.protocol_error)


# ---------------------------------------------------------------------- caller side


_mask_keys: list[bytes] = []  # fresh 4-byte mask keys, taken from the end


def _refill_mask_keys() -> bytes:
    """One key now and 1,023 more: one ``os.urandom`` read serves 1,024 frames."""
    pool = os.urandom(4096)
    _mask_keys[:] = [pool[i : i + 4] for i in range(4, 4096, 4)]
    return pool[:4]


def encode_frame(payload: bytes, opcode: int = OP_TEXT, key: bytes | None = None) -> bytes:
    """One final client→server frame: header, mask ``key`` (fresh if ``None``), masked payload."""
    size = len(payload)
    if key is None:
        key = _mask_keys.pop() if _mask_keys else _refill_mask_keys()
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = _HEAD16.pack(0x80 | opcode, 0xFE, size)
    else:
        head = _HEAD64.pack(0x80 | opcode, 0xFF, size)
    return b"".join((head, key, apply_mask(payload, key)))


def _violation(code: int, reason: str) -> Closed:
    return Closed(code, reason, protocol_error=True)


def parse_frames(
    buffer: bytes | bytearray, max_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[list[tuple[int, bool, bytes]], int]:
    """Complete frames at the start of ``buffer`` as ``(opcode, fin, payload)``, and how many
    bytes they took (the caller deletes them). A trailing partial frame is left for later.

    Server frames are not masked; a masked one is unmasked anyway. Raises :class:`Closed`
    with ``protocol_error`` set — 1002 for RSV bits, a reserved opcode or a fragmented or
    oversized (> 125 bytes) control frame, 1009 for a frame larger than ``max_bytes`` — as
    soon as the frame's header shows it, so an oversized payload is never buffered.
    """
    frames: list[tuple[int, bool, bytes]] = []
    end = len(buffer)
    pos = 0
    while end - pos >= 2:
        first, second = buffer[pos], buffer[pos + 1]
        size = second & 0x7F
        head = 2
        if size == 126:
            if end - pos < 4:
                break
            size = (buffer[pos + 2] << 8) | buffer[pos + 3]
            head = 4
        elif size == 127:
            if end - pos < 10:
                break
            size = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
            head = 10
        if first & 0x70:
            raise _violation(1002, "protocol error: RSV bits set (no extension was negotiated)")
        opcode = first & 0x0F
        if opcode not in OPCODES:
            raise _violation(1002, f"protocol error: reserved opcode {opcode:#x}")
        if opcode >= OP_CLOSE and (size > _MAX_CONTROL_BYTES or not first & 0x80):
            raise _violation(1002, "protocol error: control frame fragmented or over 125 bytes")
        if size > max_bytes:
            raise _violation(1009, f"frame of {size} bytes is over the {max_bytes}-byte limit")
        key = None
        if second & 0x80:
            if end - pos < head + 4:
                break
            key = bytes(buffer[pos + head : pos + head + 4])
            head += 4
        stop = pos + head + size
        if stop > end:
            break
        payload = bytes(buffer[pos + head : stop])
        if key is not None:
            payload = apply_mask(payload, key)
        frames.append((opcode, bool(first & 0x80), payload))
        pos = stop
    return frames, pos


def close_payload(data: bytes) -> tuple[int, str]:
    """A close frame's (code, reason); 1005 when it carries no code (RFC 6455 §7.1.5).

    Raises :class:`Closed` (``protocol_error``) for a one-byte payload or a code no endpoint
    may send (1002), or a reason that is not UTF-8 (1007).
    """
    if not data:
        return 1005, ""
    if len(data) == 1:
        raise _violation(1002, "protocol error: close frame with a one-byte payload")
    code = (data[0] << 8) | data[1]
    if not close_code_allowed(code):
        raise _violation(1002, f"protocol error: close code {code} is not allowed on the wire")
    try:
        reason = data[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise _violation(1007, "protocol error: close reason is not UTF-8") from None
    return code, reason


def close_code_allowed(code: int) -> bool:
    """Whether a peer may send ``code`` in a close frame (RFC 6455 §7.4 and the IANA
    registry): 1000–1003, 1007–1014, and 3000–4999 (libraries, applications)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# ---------------------------------------------------------------------- agent side

_FIN = 0x80
_MASKED = 0x80
_FAST_OPCODES = frozenset({OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})


@dataclass(frozen=True, slots=True)
class Control:
    """A complete control frame (close, ping or pong), exactly as received."""

    raw: bytes


Message = str | bytes
"""A complete data message: ``str`` for a text frame, ``bytes`` for a binary one."""


class FrameCutter:
    """Cuts one connection's inbound byte stream into messages and control frames.

    The agent simulator's inbound hot path: websockets' own receive path runs a parser
    generator, an assembler queue and a task switch into the handler for every message.
    This takes the common case — complete, unfragmented, masked text or binary frames without
    RSV bits and no larger than the message limit — and returns their payloads directly.
    Control frames come back untouched as :class:`Control` for websockets to act on (pong,
    close handshake). Everything else ends the fast path for the connection
    (:attr:`passthrough`): the bytes from that frame on are returned for websockets' own
    parser, which then behaves exactly as without this class — a fragmented message is
    assembled, a protocol violation closes with 1002, an oversized frame with 1009, text that
    is not UTF-8 with 1007. The hand-over happens at a frame boundary and is permanent, so
    messages keep their order.

    Args:
        max_size: the largest message accepted on the fast path (``None``: no limit); a
            larger frame is handed to websockets, which closes with 1009.
        passthrough: start in pass-through mode (websockets' parser already holds bytes).
    """

    __slots__ = ("_max_size", "_rest", "passthrough")

    def __init__(self, max_size: int | None, *, passthrough: bool = False) -> None:
        self._max_size = max_size
        self._rest = b""
        self.passthrough = passthrough

    def feed(self, data: bytes) -> tuple[list[Message | Control], bytes]:
        """Take received bytes; return the complete items in order, then the bytes to hand
        to websockets' parser (empty unless the fast path ended here or earlier)."""
        if self.passthrough:
            return [], data
        # The usual read: one whole masked text frame of 126..65535 bytes (every ACS audio
        # frame), nothing before or after it.
        if (
            not self._rest
            and len(data) > 8
            and data[0] == _FIN | OP_TEXT
            and data[1] == _MASKED | 126
            and len(data) == 8 + ((data[2] << 8) | data[3])
            and (self._max_size is None or len(data) - 8 <= self._max_size)
        ):
            try:
                return [apply_mask(data[8:], data[4:8]).decode()], b""
            except UnicodeDecodeError:
                pass  # the general way below hands it to websockets (1007)
        if self._rest:
            data = self._rest + data
            self._rest = b""
        items: list[Message | Control] = []
        offset = 0
        end = len(data)
        limit = self._max_size
        while end - offset >= 2:
            first = data[offset]
            second = data[offset + 1]
            size = second & 0x7F
            head = offset + 2
            if size == 126:
                if end - offset < 4:
                    break
                size = int.from_bytes(data[head : head + 2], "big")
                head += 2
            elif size == 127:
                if end - offset < 10:
                    break
                size = int.from_bytes(data[head : head + 8], "big")
                head += 8
            opcode = first & 0x0F
            if (
                first & 0xF0 != _FIN  # fragmented, or RSV bits set
                or not second & _MASKED
                or opcode not in _FAST_OPCODES
                or (limit is not None and opcode < OP_CLOSE and size > limit)
            ):
                return self._hand_over(items, data, offset)
            stop = head + 4 + size
            if stop > end:
                break
            if opcode >= OP_CLOSE:
                items.append(Control(data[offset:stop]))
            elif opcode == OP_TEXT:
                try:
                    items.append(apply_mask(data[head + 4 : stop], data[head : head + 4]).decode())
                except UnicodeDecodeError:
                    return self._hand_over(items, data, offset)
            else:
                items.append(apply_mask(data[head + 4 : stop], data[head : head + 4]))
            offset = stop
        if offset < end:
            self._rest = data[offset:]
        return items, b""

    def _hand_over(
        self, items: list[Message | Control], data: bytes, offset: int
    ) -> tuple[list[Message | Control], bytes]:
        self.passthrough = True
        return items, data[offset:]
