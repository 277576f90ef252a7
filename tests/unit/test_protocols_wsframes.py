"""The simulator's inbound frame cutter, fed frames that websockets itself serialises."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from loadtest.protocols.wsframes import Control, FrameCutter

TEXT = '{"kind":"AudioData","audioData":{"data":"AAAA"}}'


def client(opcode: Opcode, data: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client→server frame (masked), as websockets' client would send it; ``rsv1`` sets the
    compression bit afterwards (websockets will not serialise it unnegotiated)."""
    frame = bytearray(Frame(opcode, data, fin=fin).serialize(mask=True))
    if rsv1:
        frame[0] |= 0x40
    return bytes(frame)


def test_text_and_binary_messages_in_one_read() -> None:
    cutter = FrameCutter(1 << 20)
    data = client(Opcode.TEXT, TEXT.encode()) + client(Opcode.BINARY, b"\x00\x01\x02")
    assert cutter.feed(data) == ([TEXT, b"\x00\x01\x02"], b"")
    assert not cutter.passthrough


@pytest.mark.parametrize("size", [0, 125, 126, 1000, 65535, 65536, 200_000])
def test_every_length_encoding(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    cutter = FrameCutter(1 << 20)
    assert cutter.feed(client(Opcode.BINARY, payload)) == ([payload], b"")


def test_a_frame_split_across_reads_byte_by_byte() -> None:
    cutter = FrameCutter(1 << 20)
    data = client(Opcode.TEXT, ("é" * 300).encode()) + client(Opcode.TEXT, b"next")
    items: list[object] = []
    for index in range(len(data)):
        got, rest = cutter.feed(data[index : index + 1])
        assert rest == b""
        items += got
    assert items == ["é" * 300, "next"]


def test_control_frames_come_back_untouched_in_order() -> None:
    ping = client(Opcode.PING, b"hi")
    close = client(Opcode.CLOSE, b"\x03\xe8bye")
    cutter = FrameCutter(1 << 20)
    items, rest = cutter.feed(client(Opcode.TEXT, b"a") + ping + client(Opcode.TEXT, b"b") + close)
    assert items == ["a", Control(ping), "b", Control(close)] and rest == b""


@pytest.mark.parametrize(
    "odd",
    [
        client(Opcode.TEXT, b"part", fin=False),  # a fragmented message starts
        client(Opcode.CONT, b"stray"),  # a continuation without a start
        client(Opcode.TEXT, b"x", rsv1=True),  # an extension bit nobody negotiated
        Frame(Opcode.TEXT, b"unmasked").serialize(mask=False),  # a client must mask
        client(Opcode.TEXT, b"\xff\xfe not utf-8"),
        client(Opcode.BINARY, bytes(2000)),  # over max_size
        bytes([0x83, 0x80]) + bytes(4),  # reserved opcode 3
    ],
)
def test_anything_else_hands_the_stream_to_websockets_from_that_frame_on(odd: bytes) -> None:
    cutter = FrameCutter(1024)
    before = client(Opcode.TEXT, b"before")
    after = client(Opcode.TEXT, b"after")
    items, rest = cutter.feed(before + odd + after)
    assert items == ["before"]
    assert rest == odd + after  # from the odd frame's first byte, nothing lost or reordered
    assert cutter.passthrough
    assert cutter.feed(after) == ([], after)  # for good


def test_a_large_control_frame_is_websockets_to_refuse() -> None:
    big_ping = bytes([0x89, 0xFE, 0x00, 0xC8]) + bytes(4) + bytes(200)  # 200-byte ping: invalid
    cutter = FrameCutter(1 << 20)
    assert cutter.feed(big_ping) == ([Control(big_ping)], b"")


def test_start_in_passthrough_when_websockets_already_holds_bytes() -> None:
    cutter = FrameCutter(1 << 20, passthrough=True)
    data = client(Opcode.TEXT, b"x")
    assert cutter.feed(data) == ([], data)


def test_no_limit() -> None:
    payload = bytes(3000)
    assert FrameCutter(None).feed(client(Opcode.BINARY, payload)) == ([payload], b"")


@pytest.mark.parametrize("size", [126, 1000, 65535])
def test_a_lone_text_frame_the_usual_read(size: int) -> None:
    text = "é" + "a" * (size - 2)  # exactly ``size`` bytes of UTF-8
    cutter = FrameCutter(1 << 20)
    assert cutter.feed(client(Opcode.TEXT, text.encode())) == ([text], b"")
    assert not cutter.passthrough


@pytest.mark.parametrize(
    "odd",
    [
        client(Opcode.TEXT, b"\xff" * 200),  # not UTF-8: websockets closes with 1007
        client(Opcode.TEXT, b"a" * 2000),  # over max_size: websockets closes with 1009
    ],
)
def test_a_lone_odd_text_frame_goes_to_websockets(odd: bytes) -> None:
    cutter = FrameCutter(1024)
    assert cutter.feed(odd) == ([], odd)
    assert cutter.passthrough
