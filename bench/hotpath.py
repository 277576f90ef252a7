"""A fixed, load-independent workload of the caller's hot path (edge: a measurement tool).

``python -m bench.hotpath --callers 200 --seconds 10 --pcm-dir audio_cache`` runs
``--callers`` real calls — the Locust plugin's :class:`~loadtest.runtime.harness.Harness` as
the sink, :class:`~loadtest.runtime.caller.CallDriver` streams served by the
:class:`~loadtest.runtime.scheduler.FrameScheduler`, :class:`WebSocketTransport` on real TCP
loopback sockets — for ``--seconds`` of *virtual* time against an in-process peer that
answers every turn 600 ms after the caller's end of speech with real-time 20 ms ACS audio
frames and sends ``StopAudio`` when the caller barges in. The callers' phases are spread over
the frame period as in a worker.

A virtual clock replaces ``time.monotonic_ns`` in the runtime modules and this loop stands in
for gevent's hub (it calls each socket's readiness callback after the peer wrote to it), so
the work done is the same whatever the machine's speed or load: the frames, the messages and
every branch the engine takes. Under ``valgrind --tool=callgrind`` two runs of different
length give the instructions per caller frame (the difference cancels start-up); see
:func:`main`'s ``--callgrind``. What it cannot show is how the event loop interleaves the
work (receive lag) — the capacity benchmark measures that in real time.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import heapq  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from bench.procs import bench_env  # noqa: E402
from loadtest.conversation import Phase  # noqa: E402

__all__ = ["main", "run_workload"]

_CHUNK_NS = 20_000_000
_REPLY_DELAY_NS = 600_000_000  # the peer answers this long after end of speech
_REPLY_FRAMES = 100  # 2 s of reply audio, one 20 ms frame per 20 ms
_PEER_OFFSET_NS = 10_000_000  # the peer's tick for a call: half a frame after the caller's


class _Clock:
    """Virtual monotonic time for the runtime modules (``time.monotonic_ns`` and friends)."""

    def __init__(self) -> None:
        self.now_ns = 1_000_000_000_000
        self._epoch_ns = time.time_ns() - self.now_ns

    def monotonic_ns(self) -> int:
        return self.now_ns

    def time_ns(self) -> int:
        return self.now_ns + self._epoch_ns

    def install(self) -> None:
        from loadtest.runtime import caller, scheduler, transport

        shim = types.SimpleNamespace(monotonic_ns=self.monotonic_ns, time_ns=self.time_ns)
        for module in (caller, scheduler, transport):
            module.time = shim  # type: ignore[attr-defined]


class _OwnPhases:
    """The workload sets each caller's phase on the virtual clock before it opens the call,
    so a call starts where it is opened (the real ones would wait in real time)."""

    def next_start(self, now_ns: int, period_ns: int) -> int:
        return now_ns


def _server_frame(text: str) -> bytes:
    """An unmasked server text frame, as the agent sends it."""
    payload = text.encode()
    size = len(payload)
    head = bytes((0x81, size)) if size < 126 else bytes((0x81, 126)) + size.to_bytes(2, "big")
    return head + payload


class _Peer:
    """One call's agent side: drains the caller's frames and answers each turn."""

    __slots__ = ("reply_at", "replying", "sent", "sock", "stream")

    def __init__(self, sock: socket.socket, stream: Any) -> None:
        self.sock = sock
        self.stream = stream
        self.reply_at: int | None = None
        self.replying = False
        self.sent = 0

    def tick(self, now_ns: int, audio: bytes, stop: bytes) -> bool:
        """The peer's 20 ms step; whether it wrote anything."""
        with contextlib.suppress(BlockingIOError):
            self.sock.recv(65536)  # one caller frame per 20 ms: one read drains it
        phase = self.stream.conversation.phase
        if self.replying:
            if phase is Phase.SPEAKING:  # the caller barged in
                self.replying = False
                self.sock.send(stop)
                return True
            self.sent += 1
            if self.sent >= _REPLY_FRAMES:
                self.replying = False
            self.sock.send(audio)
            return True
        if phase is Phase.AWAITING_ANSWER:
            if self.reply_at is None:
                self.reply_at = now_ns + _REPLY_DELAY_NS
            elif now_ns >= self.reply_at:
                self.reply_at, self.replying, self.sent = None, True, 1
                self.sock.send(audio)
                return True
        return False


def _settings(pcm_dir: Path) -> dict[str, str | None]:
    return {
        "WS_URL": "ws://127.0.0.1:9/api/v1/media/stream",
        "PCM_DIR": str(pcm_dir),
        "TURNS_PER_USER": "1000",
        "GREETING": "off",
        "BARGE_IN_RATE": "0.3",
        "FIRST_BYTE_TIMEOUT_SEC": "5",
        "SEED": "7",
    }


def run_workload(pcm_dir: Path, callers: int, seconds: float) -> dict[str, int]:
    """Run the workload; the counts it did (frames sent, messages received, turns)."""
    from locust import events
    from locust.env import Environment

    from loadtest.protocols.acs.agent import encode_agent_audio, encode_stop
    from loadtest.runtime import caller as caller_module
    from loadtest.runtime.caller import CallDriver
    from loadtest.runtime.harness import harness_of, option_dest
    from loadtest.runtime.library import conversation_config
    from loadtest.runtime.locust_user import VoiceUser
    from loadtest.runtime.transport import WebSocketTransport

    clock = _Clock()
    clock.install()
    caller_module._phases = _OwnPhases()  # type: ignore[assignment]
    raw = _settings(pcm_dir)
    options = argparse.Namespace(**{option_dest(env): value for env, value in raw.items()})
    environment = Environment(user_classes=[VoiceUser], events=events, parsed_options=options)
    harness = harness_of(environment)
    settings = harness.configure()
    assert harness.library is not None
    config = conversation_config(settings, harness.library.agent_sample_rate)
    audio = _server_frame(encode_agent_audio(bytes(640)))
    stop = _server_frame(encode_stop())

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(callers)
    peers: list[_Peer] = []
    transports: list[WebSocketTransport] = []
    start_ns = clock.now_ns
    for i in range(callers):
        clock.now_ns = start_ns + i * _CHUNK_NS // callers  # phases spread over a frame
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(0.0)
        server.setblocking(False)
        driver = CallDriver(settings, harness.library, config, harness, random.Random(i))
        transport = WebSocketTransport(settings, call_id=f"call-{i}")
        transport._bind(client)
        stream = driver.open_stream(transport, driver.new_conversation(), clock.now_ns)
        scheduler = caller_module._scheduler
        assert scheduler is not None
        deadline = stream.serve()
        assert deadline is not None
        heapq.heappush(scheduler._heap, (deadline, next(scheduler._order), stream))
        peers.append(_Peer(server, stream))
        transports.append(transport)

    scheduler = caller_module._scheduler
    assert scheduler is not None
    heap = scheduler._heap
    ticks = [(start_ns + i * _CHUNK_NS // callers + _PEER_OFFSET_NS, i) for i in range(callers)]
    heapq.heapify(ticks)
    end_ns = start_ns + int(seconds * 1e9)
    while True:
        clock.now_ns = min(heap[0][0], ticks[0][0])
        if clock.now_ns >= end_ns:
            break
        while heap and heap[0][0] <= clock.now_ns:
            scheduler._serve_top()
        while ticks[0][0] <= clock.now_ns:
            at, i = heapq.heappop(ticks)
            if peers[i].tick(clock.now_ns, audio, stop):
                transports[i]._on_readable()  # what the readiness watcher would call
            heapq.heappush(ticks, (at + _CHUNK_NS, i))
    frames = sum(p.stream.count for p in peers)
    received = sum(p.stream.received for p in peers)
    for peer in peers:
        peer.sock.close()  # every call ends as a dropped connection does
    # closed from greenlets of their own, as a Locust user's call is
    gevent.joinall([gevent.spawn(t.close, 1000, 0.5) for t in transports])
    for peer in peers:
        peer.stream.done.set()
    heap.clear()
    stats = harness.stats.counters
    return {
        "callers": callers,
        "frames": frames,
        "received": received,
        "turns": stats.get("turns", 0),
        "barge_attempts": stats.get("barge_attempts", 0),
        "ttfb": harness.stats.histograms["ttfb_ms"].count,
    }


_TOTAL = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def _callgrind(
    pcm_dir: Path, callers: int, seconds: float, work: Path
) -> tuple[int, dict[str, int]]:
    out = work / f"callgrind.{callers}.{seconds:g}.out"
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, "-m", "bench.hotpath", "--pcm-dir", str(pcm_dir),
        "--callers", str(callers), "--seconds", str(seconds),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=bench_env())
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    match = _TOTAL.search(out.read_text(errors="replace"))
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1)), counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath")
    parser.add_argument("--pcm-dir", type=Path, required=True)
    parser.add_argument("--callers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0, help="virtual time to run")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="run twice (SECONDS/2 and SECONDS) under callgrind; print instructions per frame",
    )
    parser.add_argument("--work", type=Path, help="keep callgrind files here")
    parser.add_argument(
        "--leak-check",
        action="store_true",
        help="run with the cyclic collector off; report the call objects still alive after "
        "every call ended (0: finished calls are freed by reference counting alone)",
    )
    args = parser.parse_args(argv)
    if args.leak_check:
        gc.disable()
        counts = run_workload(args.pcm_dir, args.callers, args.seconds)
        gc.unfreeze()
        names = {"_Stream", "Conversation", "WebSocketTransport", "TurnPlan", "Recorder"}
        alive = [type(o).__qualname__ for o in gc.get_objects() if type(o).__qualname__ in names]
        print(json.dumps({**counts, "alive_after_end": dict(collections.Counter(alive))}))
        return 0
    if not args.callgrind:
        started = time.perf_counter()
        counts = run_workload(args.pcm_dir, args.callers, args.seconds)
        counts["wall_ms"] = round((time.perf_counter() - started) * 1000)
        print(json.dumps(counts))
        return 0
    with tempfile.TemporaryDirectory(prefix="hotpath-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        short, short_counts = _callgrind(args.pcm_dir, args.callers, args.seconds / 2, work)
        long, long_counts = _callgrind(args.pcm_dir, args.callers, args.seconds, work)
    frames = long_counts["frames"] - short_counts["frames"]
    result = {
        "callers": args.callers,
        "frames": frames,
        "received": long_counts["received"] - short_counts["received"],
        "instructions_per_frame": round((long - short) / frames),
        "long": long_counts,
        "short": short_counts,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
