"""Capacity benchmark of the agent simulator: concurrent real-time calls per core.

Starts ``python -m loadtest.agent_sim`` pinned to one CPU, then ramps up calls from a load
client pinned to another CPU. Every call is full duplex like ACS: the caller streams 20 ms
``AudioData`` frames and the agent streams a real-time reply the whole time (a greeting as
long as the run). What the callers send (``--caller-audio``):

* ``noise`` (default) — what the harness sends while it listens (``SILENCE_MODE=noise``):
  a cycle of 50 comfort-noise frames, not flagged silent, so the VAD's level gate runs on
  every frame; repeats, like a load test replaying its recordings.
* ``unique`` — comfort noise that never repeats within the simulator's decode memory (a pool
  of 20,000 frames): the cost of audio that is new every frame.
* ``flagged`` — silence flagged ``silent: true``, as ACS marks a listening caller's frames
  (``SILENCE_MODE=flagged``): decoded, but not classified.
* ``none`` — callers send nothing (agent → caller audio only). For each step the
benchmark reads the simulator's own metrics — reply-frame send lateness (due time → write),
event-loop lag — its CPU use from ``/proc``, and how much reply audio reached the client.

The load client is deliberately cheap (raw asyncio protocol, pre-masked frames, one timer for
all calls) so that it is not the bottleneck. Run::

    python -m bench.agent --calls 250,500,750,1000 --step-s 10

A step "holds" when p99 lateness ≤ 20 ms, the client got ≥ 98 % of the expected audio and no
call dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from loadtest.audio.pcm import comfort_noise_frames
from loadtest.protocols import acs
from loadtest.protocols.wsframes import OP_PONG, OP_TEXT, encode_frame

__all__ = ["main"]

_FRAME_S = 0.020
_PHASES = 10
_BUCKET = re.compile(r'^voice_loadtest_agent_frame_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)$')


class _Caller(asyncio.Protocol):
    """One raw WebSocket call: upgrade, count the agent's text frames, answer pings.

    The ticker writes the caller's frames; this protocol only parses frame headers (server
    frames are unmasked) so it stays cheap.
    """

    def __init__(self, request: bytes, ready: asyncio.Future[None], mask: bytes) -> None:
        self.request = request
        self.ready = ready
        self.mask = mask
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.text_frames = 0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                head = bytes(self.buffer[:end]).decode(errors="replace")
                self.ready.set_exception(RuntimeError(head))
                return
            del self.buffer[: end + 4]
            self.upgraded = True
            self.ready.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buf = self.buffer
        offset = 0
        while len(buf) - offset >= 2:
            opcode = buf[offset] & 0x0F
            size = buf[offset + 1] & 0x7F
            header = 2
            if size == 126:
                if len(buf) - offset < 4:
                    break
                size = int.from_bytes(buf[offset + 2 : offset + 4], "big")
                header = 4
            elif size == 127:
                if len(buf) - offset < 10:
                    break
                size = int.from_bytes(buf[offset + 2 : offset + 10], "big")
                header = 10
            if len(buf) - offset < header + size:
                break
            if opcode == 0x1:
                self.text_frames += 1
            elif opcode == 0x9 and self.transport is not None:  # ping → pong, same payload
                payload = bytes(buf[offset + header : offset + header + size])
                self.transport.write(encode_frame(payload, OP_PONG, self.mask))
            offset += header + size
        del buf[:offset]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


@dataclass
class _Step:
    calls: int
    cpu_percent: float
    p50_ms: float
    p99_ms: float
    max_loop_lag_ms: float
    audio_ratio: float
    dropped: int

    @property
    def holds(self) -> bool:
        return self.p99_ms <= 20.0 and self.audio_ratio >= 0.98 and self.dropped == 0


def _scrape(port: int) -> tuple[list[tuple[float, float]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    buckets = []
    lag = 0.0
    for line in text.splitlines():
        match = _BUCKET.match(line)
        if match:
            buckets.append((float(match.group(1)), float(match.group(2))))
        elif line.startswith("voice_loadtest_agent_event_loop_lag_max_seconds "):
            lag = float(line.split()[1])
    return buckets, lag


def _quantile_ms(
    before: list[tuple[float, float]], after: list[tuple[float, float]], q: float
) -> float:
    deltas = [(b, a - c) for (b, a), (_, c) in zip(after, before, strict=True)]
    total = deltas[-1][1]
    for bound, cumulative in deltas:
        if total and cumulative >= q * total:
            return bound * 1000.0
    return 0.0


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(args: argparse.Namespace, port: int, metrics_port: int, pid: int) -> list[_Step]:
    loop = asyncio.get_running_loop()
    mask = os.urandom(4)
    frames = _caller_frames(args.caller_audio, mask)
    metadata = encode_frame(acs.encode_metadata(16000).encode(), OP_TEXT, mask)
    callers: list[_Caller] = []

    async def ticker() -> None:
        # Callers that connected at different moments send at different phases of the 20 ms
        # grid: caller i sends in sub-tick i % _PHASES, not all 1,000 in one burst.
        tick = 0
        t0 = loop.time()
        step_s = _FRAME_S / _PHASES
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, t0 + tick * step_s - loop.time()))
            if frames:
                pool = len(frames)
                offset = tick * len(callers)
                for index in range(tick % _PHASES, len(callers), _PHASES):
                    caller = callers[index]
                    if caller.upgraded and not caller.lost and caller.transport is not None:
                        caller.transport.write(frames[(offset + index) % pool])

    async def open_call(index: int) -> _Caller:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"x-ms-call-connection-id: bench-{index}\r\n\r\n"
        ).encode()
        ready: asyncio.Future[None] = loop.create_future()
        _, caller = await loop.create_connection(
            lambda: _Caller(request, ready, mask), "127.0.0.1", port
        )
        await ready
        assert caller.transport is not None
        caller.transport.write(metadata)
        return caller

    tick_task = asyncio.create_task(ticker())
    steps: list[_Step] = []
    for target in args.calls:
        while len(callers) < target:
            batch = min(50, target - len(callers))
            base = len(callers)
            callers.extend(await asyncio.gather(*(open_call(base + i) for i in range(batch))))
            await asyncio.sleep(0.05)
        await asyncio.sleep(args.settle_s)
        buckets0, _ = _scrape(metrics_port)
        cpu0, wall0 = _cpu_s(pid), time.monotonic()
        received0 = sum(c.text_frames for c in callers)
        await asyncio.sleep(args.step_s)
        buckets1, lag = _scrape(metrics_port)
        elapsed = time.monotonic() - wall0
        cpu = (_cpu_s(pid) - cpu0) / elapsed * 100.0
        received = sum(c.text_frames for c in callers) - received0
        step = _Step(
            calls=target,
            cpu_percent=cpu,
            p50_ms=_quantile_ms(buckets0, buckets1, 0.50),
            p99_ms=_quantile_ms(buckets0, buckets1, 0.99),
            max_loop_lag_ms=lag * 1000.0,
            audio_ratio=received / (50.0 * elapsed * target),
            dropped=sum(1 for c in callers if c.lost),
        )
        steps.append(step)
        print(
            f"calls={step.calls:5d} cpu={step.cpu_percent:5.1f}% lateness p50<={step.p50_ms:g}ms "
            f"p99<={step.p99_ms:g}ms loop_lag_max={step.max_loop_lag_ms:.1f}ms "
            f"audio={step.audio_ratio:.3f} dropped={step.dropped} "
            f"{'holds' if step.holds else 'FAILS'}",
            flush=True,
        )
        if not step.holds and not args.keep_going:
            break
    tick_task.cancel()
    for caller in callers:
        if caller.transport is not None:
            caller.transport.abort()
    return steps


_POOL = {"noise": 50, "unique": 20_000, "flagged": 1, "none": 0}


def _caller_frames(kind: str, mask: bytes) -> list[bytes]:
    """The masked caller frames the ticker cycles through (see the module docstring)."""
    count = _POOL[kind]
    stamp = acs.iso_timestamp(time.time_ns())
    flagged = kind == "flagged"
    pcm = [bytes(640)] if flagged else comfort_noise_frames(16000, 20, count, seed=7)
    return [
        encode_frame(acs.encode_frame(f, silent=flagged).render_utf8(stamp), OP_TEXT, mask)
        for f in pcm
    ]


def _start_agent(args: argparse.Namespace) -> tuple[subprocess.Popen[str], int, int]:
    duration_ms = int((len(args.calls) * (args.step_s + args.settle_s + 10) + 60) * 1000)
    command = [
        sys.executable, "-m", "loadtest.agent_sim", "--port", "0", "--metrics-port", "0",
        "--greeting-ms", str(duration_ms // 20 * 20), "--event-loop", args.event_loop,
        *args.agent_args,
    ]  # fmt: skip
    cpu = args.server_cpu
    proc = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    ports: dict[str, int] = {}
    started = threading.Event()

    def drain() -> None:  # the simulator logs every call; keep its pipe empty
        assert proc.stderr is not None
        for line in proc.stderr:
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("event") in ("metrics", "listening"):
                ports[str(entry["event"])] = int(entry["port"])
                if entry["event"] == "listening":
                    started.set()
            elif entry.get("level") in ("warning", "error"):
                print(line, end="", file=sys.stderr)
        started.set()

    threading.Thread(target=drain, daemon=True).start()
    started.wait(60)
    if "listening" not in ports:
        raise SystemExit("agent simulator did not start")
    return proc, ports["listening"], ports["metrics"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent")
    parser.add_argument("--calls", default="250,500,750,1000", help="comma-separated steps")
    parser.add_argument("--step-s", type=float, default=10.0, help="measurement per step")
    parser.add_argument("--settle-s", type=float, default=3.0, help="wait after ramping a step")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument(
        "--caller-audio",
        choices=tuple(_POOL),
        default="noise",
        help="what callers stream (see the module docstring)",
    )
    parser.add_argument("--event-loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--keep-going", action="store_true", help="continue after a failing step")
    parser.add_argument("--path", default="/api/v1/media/stream")
    parser.add_argument("agent_args", nargs="*", help="extra simulator flags (after --)")
    args = parser.parse_args(argv)
    args.calls = [int(c) for c in args.calls.split(",")]
    cpus = os.sched_getaffinity(0)
    if {args.server_cpu, args.client_cpu} - cpus or args.server_cpu == args.client_cpu:
        parser.error(f"--server-cpu and --client-cpu must be two different CPUs of {sorted(cpus)}")
    os.sched_setaffinity(0, {args.client_cpu})
    proc, port, metrics_port = _start_agent(args)
    try:
        steps = asyncio.run(_run(args, port, metrics_port, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    held = [s.calls for s in steps if s.holds]
    summary = {
        "max_calls_held_one_core": max(held) if held else 0,
        "caller_audio": args.caller_audio,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
