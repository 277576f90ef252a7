"""The simulator's read stamps on a real asyncio loop (edge): when many callers' frames are
readable at once, each is stamped when it was read, not after the ones before it were
handled — the stamps are the ground truth the harness is compared with."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time

import pytest
from websockets.asyncio.server import ServerConnection, serve

from loadtest.agent_sim.edge import DirectConnection, _Reads
from loadtest.protocols.wsframes import Message

pytestmark = [pytest.mark.integration]

_CALLERS = 5
_HANDLING_NS = 3_000_000  # each message takes 3 ms to handle

_CLIENTS = textwrap.dedent(
    """
    import sys
    from websockets.sync.client import connect

    calls = [connect(sys.argv[1], compression=None) for _ in range(int(sys.argv[2]))]
    print("connected", flush=True)
    sys.stdin.readline()
    for call in calls:  # back to back: the agent finds them all readable at once
        call.send("hello")
    sys.stdin.readline()
    """
)


async def _stamps() -> list[int]:
    stamps: list[int] = []
    done = asyncio.Event()

    def sink(message: Message, rx_ns: int) -> None:
        stamps.append(rx_ns)
        end = time.monotonic_ns() + _HANDLING_NS
        while time.monotonic_ns() < end:
            pass
        if len(stamps) == _CALLERS:
            done.set()

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, DirectConnection)
        ws.deliver_to(sink)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, create_connection=DirectConnection) as server:
        port = server.sockets[0].getsockname()[1]
        clients = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CLIENTS, f"ws://127.0.0.1:{port}/", str(_CALLERS),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert clients.stdin is not None and clients.stdout is not None
        try:
            assert (await asyncio.wait_for(clients.stdout.readline(), 10)).strip() == b"connected"
            clients.stdin.write(b"go\n")
            await clients.stdin.drain()
            time.sleep(0.2)  # the loop is busy while every message arrives
            await asyncio.wait_for(done.wait(), 10)
        finally:
            clients.kill()
            await clients.wait()
    return stamps


def test_messages_readable_at_once_are_stamped_before_any_is_handled() -> None:
    stamps = asyncio.run(_stamps())
    assert len(stamps) == _CALLERS
    # handled one after the other, 3 ms each; read together: stamped within one handling
    assert max(stamps) - min(stamps) < _HANDLING_NS, [s - min(stamps) for s in stamps]


class _Connection:
    """What :class:`_Reads` calls on a connection: take the read, or fail the connection."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.taken: list[int] = []
        self.failed = False

    def take(self, data: bytes, rx_ns: int) -> None:
        if self.broken:
            raise RuntimeError("a bug in this call")
        self.taken.append(rx_ns)

    def handler_failed(self) -> None:
        self.failed = True


def test_a_read_that_fails_ends_its_connection_and_the_others_are_still_handled() -> None:
    async def run() -> list[_Connection]:
        reads = _Reads(asyncio.get_running_loop())
        connections = [_Connection(), _Connection(broken=True), _Connection()]
        for rx_ns, connection in enumerate(connections):
            reads.add(connection, b"x", rx_ns)  # type: ignore[arg-type]
        assert all(not c.taken for c in connections)  # stamped, not handled yet
        await asyncio.sleep(0)  # the loop's next iteration
        return connections

    first, broken, last = asyncio.run(run())
    assert (first.taken, last.taken) == ([0], [2])
    assert broken.failed and not first.failed and not last.failed
