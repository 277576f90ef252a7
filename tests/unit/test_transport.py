"""What the caller's transport makes of the agent's frames (``WebSocketTransport._messages``,
the pure part of its receive path: bytes of one read in, messages out), checked against
frames serialised by python-websockets' independent implementation; and which kernel stamp
each TLS record gets (``_RecordStamps``) from a receive queue modelled on Linux's."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

from loadtest.protocols.wsframes import Closed
from loadtest.runtime.transport import _SO_TIMESTAMPNS, WebSocketTransport, _RecordStamps
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


class _Kernel:
    """A socket's receive queue as the TLS arrival stamps see it: segments of bytes, each with
    the kernel's (wall-clock) stamp; a peek copies from the front and reports the stamp of the
    last segment it copied from, as Linux does."""

    def __init__(self) -> None:
        self.segments: list[tuple[bytes, int]] = []

    def arrive(self, data: bytes, ms_ago: float) -> None:
        self.segments.append((data, time.time_ns() - int(ms_ago * 1e6)))

    def take(self, size: int) -> None:
        """The SSL object reads ``size`` bytes."""
        while size:
            data, stamp = self.segments[0]
            taken = min(size, len(data))
            self.segments[0] = (data[taken:], stamp)
            if taken == len(data):
                self.segments.pop(0)
            size -= taken

    def peek(
        self, buffers: list[memoryview], space: int, flags: int
    ) -> tuple[int, list[Any], int, None]:
        assert flags == socket.MSG_PEEK and space
        if not self.segments:
            raise BlockingIOError
        buffer, size, stamp = buffers[0], 0, 0
        for data, arrived in self.segments:
            stamp = arrived
            part = data[: len(buffer) - size]
            buffer[size : size + len(part)] = part
            size += len(part)
            if size == len(buffer):
                break
        seconds, nanoseconds = divmod(stamp, 1_000_000_000)
        ancillary = [(socket.SOL_SOCKET, _SO_TIMESTAMPNS, struct.pack("@qq", seconds, nanoseconds))]
        return size, ancillary, 0, None


def _record(body_size: int) -> bytes:
    return bytes((23, 3, 3)) + body_size.to_bytes(2, "big") + bytes(body_size)


def _ms_ago(arrived_ns: int) -> float:
    return (time.monotonic_ns() - arrived_ns) / 1e6


def test_a_tls_record_is_stamped_when_the_segment_that_completes_it_arrived() -> None:
    kernel = _Kernel()
    stamps = _RecordStamps(kernel.peek)
    first, second = _record(100), _record(50)
    kernel.arrive(first[:40], ms_ago=300)  # one record in two segments, then another record
    kernel.arrive(first[40:], ms_ago=200)
    kernel.arrive(second, ms_ago=100)
    assert 195 < _ms_ago(stamps.stamp()) < 250  # its end's segment: not its start's, nor later
    kernel.take(len(first))
    stamps.read()
    assert 95 < _ms_ago(stamps.stamp()) < 150


def test_a_record_read_in_part_is_stamped_when_its_rest_arrived() -> None:
    kernel = _Kernel()
    stamps = _RecordStamps(kernel.peek)
    first, second = _record(100), _record(50)
    kernel.arrive(first[:40], ms_ago=300)
    stamps.stamp()
    kernel.take(40)  # OpenSSL takes the part that is there and waits for the rest (no read())
    kernel.arrive(first[40:], ms_ago=200)  # the rest, then the next record
    kernel.arrive(second, ms_ago=100)
    assert 195 < _ms_ago(stamps.stamp()) < 250
    kernel.take(len(first) - 40)
    stamps.read()
    assert 95 < _ms_ago(stamps.stamp()) < 150


def test_bytes_that_are_no_record_header_take_the_last_segments_stamp() -> None:
    kernel = _Kernel()
    stamps = _RecordStamps(kernel.peek)
    kernel.arrive(b"GARBAGE", ms_ago=300)
    kernel.arrive(b"MORE", ms_ago=100)
    assert 95 < _ms_ago(stamps.stamp()) < 150
    assert stamps.missing == -1
    kernel.take(11)
    stamps.read()  # a read returned data: the next one starts at a header again
    assert stamps.missing == 0
