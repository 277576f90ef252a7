"""Client→server WebSocket frames cut out of the byte stream, sans-I/O (RFC 6455 §5.2).

The simulator's inbound hot path. websockets' own receive path costs about 20 µs per message
(a parser generator, an assembler queue and a task switch into the handler); at 1,000 calls ×
50 caller frames a second that alone is a core. :class:`FrameCutter` takes the common case —
complete, unfragmented, masked text or binary frames without RSV bits and no larger than the
message limit — and returns their payloads directly. Control frames (ping, pong, close) come
back untouched as :class:`Control` so websockets acts on them as usual (pong, close
handshake).

Everything else ends the fast path for the connection (:attr:`FrameCutter.passthrough`): the
bytes from that frame on are returned for websockets' own parser, which then behaves exactly
as it does without this module — a fragmented message is assembled, a protocol violation
closes with 1002, an oversized frame with 1009, text that is not UTF-8 with 1007. Because the
hand-over happens at a frame boundary and is permanent, messages keep their order.
"""

from __future__ import annotations

from dataclasses import dataclass

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

__all__ = ["Control", "FrameCutter", "Message"]

_FIN = 0x80
_MASKED = 0x80
_TEXT, _BINARY = 0x1, 0x2
_FAST_OPCODES = frozenset({_TEXT, _BINARY, 0x8, 0x9, 0xA})  # data + close, ping, pong
_CONTROL = 0x8  # opcodes from here on are control frames


@dataclass(frozen=True, slots=True)
class Control:
    """A complete control frame (close, ping or pong), exactly as received."""

    raw: bytes


Message = str | bytes
"""A complete data message: ``str`` for a text frame, ``bytes`` for a binary one."""


class FrameCutter:
    """Cuts one connection's inbound byte stream into messages and control frames.

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
                or (limit is not None and opcode < _CONTROL and size > limit)
            ):
                return self._hand_over(items, data, offset)
            stop = head + 4 + size
            if stop > end:
                break
            if opcode >= _CONTROL:
                items.append(Control(data[offset:stop]))
            elif opcode == _TEXT:
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
