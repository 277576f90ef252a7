"""What the caller's transport makes of the agent's frames (``WebSocketTransport._messages``,
the pure part of its receive path: bytes of one read in, messages out), checked against
frames serialised by python-websockets' independent implementation."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from loadtest.protocols.wsframes import Closed
from loadtest.runtime.transport import WebSocketTransport
from loadtest.settings import parse_settings


def _transport(max_bytes: int = 4096) -> WebSocketTransport:
    return WebSocketTransport(parse_settings({"WS_MAX_MESSAGE_BYTES": str(max_bytes)}))


def _server(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=False)


def _violation(data: bytes, max_bytes: int = 4096) -> Closed:
    with pytest.raises(Closed) as caught:
        _transport(max_bytes)._messages(data)
    assert caught.value.protocol_error
    return caught.value


def test_text_binary_and_fragmented_messages_come_out_whole() -> None:
    data = (
        _server(Opcode.TEXT, "héllo".encode())
        + _server(Opcode.BINARY, b"\x00\x01", fin=False)
        + _server(Opcode.CONT, b"\x02")
        + _server(Opcode.TEXT, "ü".encode()[:1], fin=False)  # a character split over frames
        + _server(Opcode.CONT, "ü".encode()[1:])
    )
    assert _transport()._messages(data) == ["héllo", b"\x00\x01\x02", "ü"]


def test_text_that_is_not_utf8_fails_with_1007() -> None:
    assert _violation(_server(Opcode.TEXT, b'{"kind":"\xff"}')).code == 1007


def test_a_message_over_the_limit_fails_with_1009_even_in_small_fragments() -> None:
    fragments = _server(Opcode.BINARY, b"x" * 3000, fin=False) + _server(Opcode.CONT, b"x" * 3000)
    assert _violation(fragments, max_bytes=4096).code == 1009
    assert _violation(_server(Opcode.TEXT, b"x" * 5000), max_bytes=4096).code == 1009
    assert _transport(4096)._messages(_server(Opcode.TEXT, b"x" * 4096)) == ["x" * 4096]


def test_a_new_message_inside_a_fragmented_one_fails_with_1002() -> None:
    data = _server(Opcode.TEXT, b"a", fin=False) + _server(Opcode.TEXT, b"b")
    assert _violation(data).code == 1002
    assert _violation(_server(Opcode.CONT, b"orphan")).code == 1002


def test_a_reserved_opcode_fails_with_1002() -> None:
    assert _violation(bytes((0x83, 0))).code == 1002


def test_a_bad_close_code_fails_with_1002_and_a_good_one_is_reported() -> None:
    assert _violation(_server(Opcode.CLOSE, (1006).to_bytes(2, "big"))).code == 1002
    transport = _transport()
    messages = transport._messages(
        _server(Opcode.TEXT, b"last") + _server(Opcode.CLOSE, b"\x03\xe8")
    )
    assert messages == ["last"]
    assert transport._closed == Closed(1000, "")
