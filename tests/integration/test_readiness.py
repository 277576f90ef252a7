"""Caller reads on gevent's real loop (edge): :class:`ReadReadiness` with and without epoll,
and the transport receiving through it from a real WebSocket server, plain and over TLS."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest
from gevent import monkey
from gevent.event import Event

from loadtest.procutil import free_port
from loadtest.runtime.readiness import ReadReadiness
from loadtest.runtime.transport import WebSocketTransport
from loadtest.settings import parse_settings
from tests.integration.arm_metrics_stub import make_tls_files

pytestmark = [pytest.mark.integration]

_blocking_sleep = monkey.get_original("time", "sleep")  # waits without running the hub


@pytest.fixture(params=[True, False], ids=["epoll", "watchers"])
def readiness(request: pytest.FixtureRequest) -> ReadReadiness:
    return ReadReadiness(use_epoll=request.param)


def test_a_readable_socket_calls_back_until_its_data_is_read(readiness: ReadReadiness) -> None:
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    got: list[bytes] = []
    arrived = Event()

    def on_readable() -> None:
        got.append(reader.recv(1))  # one byte a call: the rest must call back again
        arrived.set()

    readiness.watch(reader.fileno(), on_readable)
    writer.send(b"ab")
    assert arrived.wait(5)
    gevent.sleep(0.05)
    assert got == [b"a", b"b"]
    readiness.unwatch(reader.fileno(), on_readable)
    writer.send(b"c")
    gevent.sleep(0.05)
    assert got == [b"a", b"b"]
    reader.close()
    writer.close()


def test_poll_reads_what_is_readable_without_the_event_loop() -> None:
    readiness = ReadReadiness()
    assert readiness.polls
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    got: list[bytes] = []
    readiness.watch(reader.fileno(), lambda: got.append(reader.recv(64)))
    readiness.poll()
    assert got == []  # nothing to read: nothing called, nothing waited for
    writer.send(b"x")
    _blocking_sleep(0.01)
    readiness.poll()
    assert got == [b"x"]
    reader.close()
    writer.close()


def test_a_failing_callback_is_reported_and_the_others_still_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    readiness = ReadReadiness()
    pairs = [socket.socketpair() for _ in range(3)]
    got: list[int] = []

    def on_readable(index: int) -> None:
        pairs[index][0].recv(64)
        if index == 1:
            raise RuntimeError("a bug in one call")
        got.append(index)

    for index, (reader, writer) in enumerate(pairs):
        readiness.watch(reader.fileno(), functools.partial(on_readable, index))
        writer.send(b"z")
    _blocking_sleep(0.01)
    readiness.poll()  # called by the frame scheduler: must return, not raise
    assert sorted(got) == [0, 2]
    assert "a bug in one call" in capsys.readouterr().err
    for reader, writer in pairs:
        reader.close()
        writer.close()


def test_a_descriptor_number_reused_by_a_new_socket_is_watched_for_the_new_one() -> None:
    readiness = ReadReadiness()
    old_reader, old_writer = socket.socketpair()
    number = old_reader.fileno()
    old: list[bytes] = []

    def on_old() -> None:
        old.append(b"")

    readiness.watch(number, on_old)
    old_reader.close()  # closed while watched: the OS drops it from the epoll set
    new_reader, new_writer = socket.socketpair()
    if new_reader.fileno() == number:  # the OS handed the number to another socket
        new_reader.detach()
    else:  # or make it so
        os.dup2(new_reader.fileno(), number)
        new_reader.close()
    new: list[bytes] = []
    readiness.watch(number, lambda: new.append(os.read(number, 64)))
    readiness.unwatch(number, on_old)  # the old owner's late unwatch leaves the new one be
    new_writer.send(b"y")
    _blocking_sleep(0.01)
    readiness.poll()
    assert (old, new) == ([], [b"y"])
    os.close(number)
    old_writer.close()
    new_writer.close()


_SERVER = textwrap.dedent(
    """
    import ssl, sys
    from websockets.sync.server import serve

    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = None
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

    def answer(ws):
        for message in ws:
            ws.send(message * 3)
            ws.send(bytes(range(256)) * 400)  # ~100 KB: several reads, TLS records held back

    with serve(answer, "127.0.0.1", port, ssl=context, max_size=None) as server:
        print("ready", flush=True)
        server.serve_forever()
    """
)


@pytest.fixture(params=["ws", "wss"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A WebSocket server that answers each message with it three times and 100 KB of bytes:
    its URL and the CA bundle to trust ('' for plain TCP)."""
    port = free_port()
    cert = key = ca = ""
    if request.param == "wss":
        files = make_tls_files(tmp_path)
        cert, key, ca = str(files.cert), str(files.key), str(files.ca)
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port), cert, key],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield f"{request.param}://127.0.0.1:{port}/", ca
    finally:
        process.kill()
        process.communicate()


def test_the_transport_receives_whole_messages_through_the_readiness(
    server: tuple[str, str],
) -> None:
    url, ca = server
    transport = WebSocketTransport(parse_settings({"WS_URL": url, "WS_CA_BUNDLE": ca or None}))
    transport.connect(url, 5)
    messages: list[str | bytes] = []
    ended: list[BaseException] = []  # a close or a callback's error: neither may come
    both = Event()

    def on_messages(read_ns: int, batch: list[str | bytes]) -> None:
        messages.extend(batch)
        if len(messages) >= 4:
            both.set()

    transport.start_receiving(on_messages, ended.append, ended.append)
    transport.send_nowait("hi")
    transport.send_nowait("yo")
    assert both.wait(10), messages
    assert messages == ["hihihi", bytes(range(256)) * 400, "yoyoyo", bytes(range(256)) * 400]
    transport.close()
    assert ended == []


def test_a_late_read_carries_the_instant_its_data_arrived(server: tuple[str, str]) -> None:
    url, ca = server
    transport = WebSocketTransport(parse_settings({"WS_URL": url, "WS_CA_BUNDLE": ca or None}))
    transport.connect(url, 5)
    stamps: list[int] = []
    heard = Event()

    def on_messages(arrived_ns: int, batch: list[str | bytes]) -> None:
        stamps.append(arrived_ns)
        heard.set()

    transport.start_receiving(on_messages, print, print)
    transport.send_nowait("hi")
    # the answer reaches the socket while the event loop cannot run: it is read 200 ms late
    select = monkey.get_original("select", "select")
    assert select([transport._fd], [], [], 5)[0]
    readable_ns = time.monotonic_ns()
    _blocking_sleep(0.2)
    assert heard.wait(5)
    transport.close()
    if url.startswith("ws:"):  # the kernel's receive stamp: when it arrived, not when read
        assert stamps[0] - readable_ns < 100_000_000, (stamps[0] - readable_ns) / 1e6
    else:  # TLS reads have none: the instant the read returned
        assert stamps[0] - readable_ns >= 200_000_000, (stamps[0] - readable_ns) / 1e6
