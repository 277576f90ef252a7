"""The caller transport's own WebSocket framing (pure parts of loadtest/runtime/transport.py).

Frames are checked against python-websockets' independent implementation: what we send must
parse there as a masked client frame, and what a server sends (built there) must parse here.
(These live in a ``test_bench_*`` module because the framing was written for the benchmark's
performance work; they test the runtime transport.)
"""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from loadtest.protocols.wsframes import (
    Closed,
    close_code_allowed,
    close_payload,
    encode_frame,
    parse_frames,
)


def _parse_client_frame(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 996, 65535, 65536, 70000])
def test_client_frames_parse_as_masked_frames_of_every_length_class(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    frame = _parse_client_frame(encode_frame(payload, 0x2))
    assert frame.opcode is Opcode.BINARY and frame.fin and frame.data == payload


def test_text_frames_and_fresh_mask_keys() -> None:
    text = b'{"kind":"AudioData","audioData":{"data":"AAAA"}}'
    one, two = encode_frame(text), encode_frame(text)
    assert _parse_client_frame(one).data == text
    assert _parse_client_frame(one).opcode is Opcode.TEXT
    assert one[4:8] != two[4:8]  # a fresh key per frame (RFC 6455 §5.3)
    assert one[8:] != text  # and the payload is really masked


def _server(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=False)


def test_server_frames_parse_with_a_trailing_partial_frame_left() -> None:
    stream = _server(Opcode.TEXT, b"hello") + _server(Opcode.BINARY, b"\x00" * 300)
    partial = _server(Opcode.TEXT, b"x" * 1000)[:500]
    frames, used = parse_frames(stream + partial)
    assert [(op, fin, len(p)) for op, fin, p in frames] == [(0x1, True, 5), (0x2, True, 300)]
    assert used == len(stream)
    frames, used = parse_frames(bytearray(partial))
    assert frames == [] and used == 0


def test_fragments_and_control_frames_come_out_in_order() -> None:
    stream = (
        _server(Opcode.TEXT, b"hel", fin=False)
        + _server(Opcode.PING, b"p")
        + _server(Opcode.CONT, b"lo")
        + _server(Opcode.CLOSE, b"\x03\xe8bye")
    )
    frames, used = parse_frames(stream)
    assert [(op, fin, p) for op, fin, p in frames] == [
        (0x1, False, b"hel"), (0x9, True, b"p"), (0x0, True, b"lo"), (0x8, True, b"\x03\xe8bye"),
    ]  # fmt: skip
    assert used == len(stream)


def test_rsv_bits_are_a_protocol_error() -> None:
    data = bytearray(_server(Opcode.TEXT, b"x"))
    data[0] |= 0x40
    with pytest.raises(Closed) as caught:
        parse_frames(data)
    assert caught.value.code == 1002


def test_a_masked_server_frame_is_unmasked() -> None:
    frame = Frame(Opcode.TEXT, b"masked anyway").serialize(mask=True)
    frames, _ = parse_frames(frame)
    assert frames == [(0x1, True, b"masked anyway")]


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_a_reserved_opcode_fails_the_connection(opcode: int) -> None:
    good = _server(Opcode.TEXT, b"before")
    with pytest.raises(Closed) as caught:
        parse_frames(good + bytes((0x80 | opcode, 0)))
    assert caught.value.code == 1002 and caught.value.protocol_error
    assert f"reserved opcode {opcode:#x}" in caught.value.reason


def test_an_oversized_frame_is_refused_from_its_header_alone() -> None:
    header = bytes((0x81, 127)) + (16 << 20).to_bytes(8, "big")  # 16 MiB announced, none sent
    with pytest.raises(Closed) as caught:
        parse_frames(header, max_bytes=1 << 20)
    assert caught.value.code == 1009 and caught.value.protocol_error
    frames, used = parse_frames(_server(Opcode.BINARY, b"\x00" * 2048), max_bytes=2048)
    assert len(frames) == 1 and used == 2048 + 4  # exactly the limit is allowed


@pytest.mark.parametrize(
    "frame",
    [
        bytes((0x09, 1)) + b"p",  # a fragmented ping
        bytes((0x89, 126)) + (126).to_bytes(2, "big") + b"p" * 126,  # a control frame > 125
    ],
)
def test_bad_control_frames_fail_the_connection(frame: bytes) -> None:
    with pytest.raises(Closed) as caught:
        parse_frames(frame)
    assert caught.value.code == 1002 and caught.value.protocol_error


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x03", 1002),  # one byte: half a code
        ((1005).to_bytes(2, "big"), 1002),  # reserved: "no status", never on the wire
        ((1006).to_bytes(2, "big"), 1002),
        ((1015).to_bytes(2, "big"), 1002),
        ((999).to_bytes(2, "big"), 1002),
        ((2000).to_bytes(2, "big"), 1002),
        ((5000).to_bytes(2, "big"), 1002),
        ((1000).to_bytes(2, "big") + b"\xff\xfe", 1007),  # a reason that is not UTF-8
    ],
)
def test_bad_close_frames_fail_the_connection(payload: bytes, code: int) -> None:
    with pytest.raises(Closed) as caught:
        close_payload(payload)
    assert caught.value.code == code and caught.value.protocol_error


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999])
def test_good_close_codes_pass(code: int) -> None:
    assert close_code_allowed(code)
    assert close_payload(code.to_bytes(2, "big") + "bye ✓".encode()) == (code, "bye ✓")
    assert close_payload(b"") == (1005, "")
