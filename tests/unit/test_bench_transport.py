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

from loadtest.protocols.wsframes import Closed, encode_frame, parse_frames


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
