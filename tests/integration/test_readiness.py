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

from bench.tlsfiles import make_tls_files
from loadtest.procutil import free_port
from loadtest.runtime.readiness import ReadReadiness
from loadtest.runtime.transport import WebSocketTransport
from loadtest.settings import parse_settings

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
    # the kernel's receive stamp (over TLS: of the record's last segment), not the read's
    assert stamps[0] - readable_ns < 100_000_000, (stamps[0] - readable_ns) / 1e6


# A TLS WebSocket server that decides where its records start and end on the wire and when
# each byte leaves: OpenSSL on memory buffers, its output written to the socket by hand.
# Told any message, it sends the records of "one", "two" (200 ms later) and "three", cut in
# two 300 ms apart, printing when it starts writing each record's last byte.
_RECORD_SERVER = textwrap.dedent(
    """
    import base64, hashlib, os, socket, ssl, sys, time

    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", port))
    print("ready", flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)

    def flush():
        conn.sendall(outgoing.read())

    def receive():
        data = conn.recv(65536)
        if not data:
            sys.exit(0)
        incoming.write(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            receive()
    flush()

    def read_some():
        while True:
            try:
                return tls.read(65536)
            except ssl.SSLWantReadError:
                flush()
                receive()

    request = b""
    while b"\\r\\n\\r\\n" not in request:
        request += read_some()
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\\r\\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(
        hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
    tls.write(("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\n"
               f"Connection: Upgrade\\r\\nSec-WebSocket-Accept: {accept}\\r\\n\\r\\n").encode())
    flush()
    read_some()  # the client's message: go

    def record(text):
        tls.write(bytes((0x81, len(text))) + text.encode())
        return outgoing.read()

    def send(data, name):
        print(name, time.monotonic_ns(), flush=True)
        conn.sendall(data)

    send(record("one"), "one")
    time.sleep(0.2)
    send(record("two"), "two")
    time.sleep(0.8)
    three = record("three")
    send(three[:10], "three-head")
    time.sleep(0.3)
    send(three[10:], "three")
    conn.recv(1)  # until the client closes
    """
)


def test_each_tls_record_carries_the_arrival_of_its_own_last_segment(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", _RECORD_SERVER, str(port), str(files.cert), str(files.key)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    url = f"wss://127.0.0.1:{port}/"
    transport = WebSocketTransport(parse_settings({"WS_URL": url, "WS_CA_BUNDLE": str(files.ca)}))
    stamps: dict[str | bytes, int] = {}
    try:
        transport.connect(url, 5)
        transport.start_receiving(
            lambda arrived_ns, batch: stamps.update(dict.fromkeys(batch, arrived_ns)),
            print, print,
        )  # fmt: skip
        transport.send_nowait("go")
        _blocking_sleep(0.5)  # "one" and "two" arrive meanwhile and are read late, together
        gevent.sleep(0.6)  # the head of "three" arrives and is read at once: OpenSSL keeps it
        _blocking_sleep(0.5)  # the rest of "three" arrives, read late
        deadline = time.monotonic() + 5
        while len(stamps) < 3 and time.monotonic() < deadline:
            gevent.sleep(0.01)
    finally:
        transport.close()
        sent_ns = dict(line.split() for line in server.communicate(timeout=10)[0].splitlines())
    assert sorted(map(str, stamps)) == ["one", "three", "two"]
    # A record is stamped when the segment holding its last byte arrived: not when it was
    # read, nor when its first part did. The kernel merges segments that queue up unread
    # into one (and stamps it with the last), so "one", read with "two", may carry its stamp.
    sent = {name: int(instant) for name, instant in sent_ns.items()}
    later_ms = {name: (stamp - sent[str(name)]) / 1e6 for name, stamp in stamps.items()}
    assert 0 <= later_ms["one"] <= 200 + 100, later_ms
    assert 0 <= later_ms["two"] < 100, later_ms
    assert 0 <= later_ms["three"] < 100, later_ms


def test_the_tls_stamps_hold_in_an_interpreter_patched_by_gevent() -> None:
    """Locust patches the standard library with gevent's, whose SSL socket keeps the OS
    socket in an attribute of its own: the late-read and record tests again, so patched."""
    patched = "from gevent import monkey; monkey.patch_all(); import sys, pytest; "
    patched += "sys.exit(pytest.main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", patched, "-q", "-p", "no:cacheprovider", __file__,
         "-k", "carries_the_instant_its_data_arrived or own_last_segment"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 passed" in done.stdout, done.stdout[-3000:]
