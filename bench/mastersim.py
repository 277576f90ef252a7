"""Simulated Locust workers for the master-scale benchmark (edge: zmq sockets, one process).

``python -m bench.mastersim --master 127.0.0.1:5557 --workers 200 --callers 200
--seconds 15`` connects ``--workers`` zmq DEALER sockets to a real Locust master and speaks
Locust's own worker protocol with its own :class:`locust.rpc.Message` (msgpack):
``client_ready`` with Locust's version, ``spawning``/``spawning_complete`` for each ``spawn``
order, a ``heartbeat`` every second and a ``stats`` report every three seconds
(``HEARTBEAT_INTERVAL``, ``WORKER_REPORT_INTERVAL``), spread over the interval as
independently started workers are. Each report carries what a worker of ``--callers``
callers ships in three seconds: Locust's request stats for the voice samples (built by
Locust's own :class:`~locust.stats.RequestStats`) and the harness's ``voice`` payload (built
by :class:`~loadtest.metrics.voice_stats.VoiceStats`, as ``report_to_master`` ships it).

The master echoes every heartbeat after handling the messages queued before it, so the
round trip is how far behind the master's message loop is. After ``--seconds`` of reports
the workers stop reporting (they keep their heartbeats) and one JSON line goes to stdout:
what was sent (the totals the master must show), the heartbeat round trips and the
``spawn`` orders seen; then the process waits for the master's ``quit``, or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import time
from collections import deque
from typing import Any

import zmq
from locust import __version__ as locust_version
from locust.rpc import Message
from locust.stats import RequestStats

from loadtest.metrics.histogram import Histogram
from loadtest.metrics.voice_stats import VoiceStats

__all__ = ["main", "report_payload"]

_REPORT_S = 3.0  # locust.runners.WORKER_REPORT_INTERVAL
_HEARTBEAT_S = 1.0  # locust.runners.HEARTBEAT_INTERVAL
_SCENARIOS = ("insurance_inquiry", "quick_question")
_TURN_S = 6.0  # a turn (speech, answer, hand-over) lasts about this long per caller
_FRAMES_PER_S = 50  # 20 ms frames


def _log(requests: RequestStats, name: str, value_ms: float) -> None:
    """One voice sample, as the harness fires it: milliseconds as a float."""
    requests.log_request("voice", name, value_ms, 0)  # type: ignore[arg-type]


def report_payload(callers: int, rng: random.Random) -> dict[str, Any]:
    """What one worker of ``callers`` callers ships in one report (``data`` of ``stats``),
    without ``user_classes_count``/``user_count`` (the spawn order decides them)."""
    voice, requests = VoiceStats(), RequestStats()
    frames = int(callers * _REPORT_S * _FRAMES_PER_S)
    for _ in range(200):  # lateness spread as a loaded worker's: ~200 distinct 0.05 ms buckets
        voice.histograms["frame_lateness_ms"].record(rng.expovariate(1.5), frames // 200)
    for _ in range(int(_REPORT_S / 0.1)):
        voice.observe("receive_lag_ms", rng.expovariate(2.0))
    turns = max(1, round(callers * _REPORT_S / _TURN_S))
    for i in range(turns):
        scenario = _SCENARIOS[i % len(_SCENARIOS)]
        ttfb = 600 + rng.expovariate(0.5)
        ok = rng.random() > 0.02
        voice.count("turns", scenario=scenario)
        if ok:
            voice.observe("ttfb_ms", ttfb, scenario)
            voice.observe("turn_ms", ttfb + 2500 + rng.random() * 1500, scenario)
            voice.count("turns_ok", scenario=scenario)
            for _ in range(8):
                voice.observe("agent_gap_ms", 20 + rng.random() * 4)
            _log(requests, "ttfb", ttfb)
            _log(requests, "turn", ttfb + 3000)
        else:
            voice.error("ttfb_timeout")
            requests.log_error("voice", "ttfb", "ttfb_timeout")
            _log(requests, "ttfb", 5000)
        if i % 3 == 0:  # about a third of turns barge in
            latency = 150 + rng.expovariate(0.3)
            voice.count("barge_attempts")
            voice.count("barge_ok")
            voice.observe("barge_in_ms", latency, scenario)
            voice.observe("talk_over_ms", latency + 40)
            _log(requests, "barge_in", latency)
    voice.count("frames_sent", frames)
    voice.count("frames_received", frames // 2)
    voice.count("stream_due_us", frames * 20_000)
    voice.count("stream_actual_us", frames * 20_000 + 500)
    voice.note_cpu(60.0)
    return {
        "stats": requests.serialize_stats(),
        "stats_total": requests.total.get_stripped_report(),
        "errors": requests.serialize_errors(),
        "voice": voice.take_delta(),
    }


def _encode(kind: str, data: Any, node_id: str) -> bytes:
    raw: bytes = Message(kind, data, node_id).serialize()  # type: ignore[no-untyped-call]
    return raw


def _decode(raw: bytes) -> Message:
    message: Message = Message.unserialize(raw)  # type: ignore[no-untyped-call]
    return message


class _Worker:
    __slots__ = ("beats", "id", "next_beat", "next_report", "reports", "socket", "users")

    def __init__(self, context: zmq.Context[Any], address: str, index: int, phase: float) -> None:
        self.id = f"sim-worker-{index}"
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.IDENTITY, self.id.encode())
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self.beats: deque[float] = deque()  # send instants of heartbeats not yet echoed
        self.next_beat = phase
        self.next_report = phase * _REPORT_S
        self.reports = 0
        self.users: dict[str, int] = {}

    def send(self, kind: str, data: Any) -> None:
        self.socket.send(_encode(kind, data, self.id))


def _quantiles(values: list[float]) -> dict[str, float | None]:
    h = Histogram(0.1)
    for v in values:
        h.record(v)
    p = h.summary()
    return {"count": p.count, "p50": p.p50, "p99": p.p99, "max": p.max}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mastersim")
    parser.add_argument("--master", required=True, help="HOST:PORT of the master's zmq port")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--callers", type=int, required=True, help="callers per worker")
    parser.add_argument("--seconds", type=float, required=True, help="how long to report")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # each worker's socket holds file descriptors: thousands need more than a usual 1,024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, min(hard, 4 * args.workers + 256))
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    rng = random.Random(args.seed)
    templates = [report_payload(args.callers, rng) for _ in range(4)]
    context: zmq.Context[Any] = zmq.Context()
    context.set(zmq.MAX_SOCKETS, args.workers + 64)  # zmq's own default cap is 1,023 sockets
    address = f"tcp://{args.master}"
    started = time.monotonic()
    workers = [_Worker(context, address, i, started + rng.random()) for i in range(args.workers)]
    by_socket = {w.socket: w for w in workers}
    poller = zmq.Poller()
    for worker in workers:
        poller.register(worker.socket, zmq.POLLIN)
        worker.send("client_ready", locust_version)

    sent: dict[str, Any] = {"reports": 0, "counters": {}, "errors": {}, "ttfb": 0, "requests": 0}
    round_trips_ms: list[float] = []
    spawns = 0
    reporting_until: float | None = None
    summary_printed = False
    while True:
        now = time.monotonic()
        if reporting_until is None and workers and all(w.users for w in workers):
            reporting_until = now + args.seconds  # every worker has its callers: report
            for worker in workers:
                worker.next_report = now + (worker.next_report - started) % _REPORT_S
        for worker in workers:
            if now >= worker.next_beat:
                worker.beats.append(now)
                worker.send("heartbeat", {"state": "running" if worker.users else "ready",
                                          "current_cpu_usage": 60.0,
                                          "current_memory_usage": 200 << 20})  # fmt: skip
                worker.next_beat += _HEARTBEAT_S
            if reporting_until is not None and worker.next_report <= now < reporting_until:
                template = templates[worker.reports % len(templates)]
                users = sum(worker.users.values())
                data = {**template, "user_classes_count": worker.users, "user_count": users}
                worker.send("stats", data)
                worker.reports += 1
                _tally(sent, template)
                worker.next_report += _REPORT_S
        if reporting_until is not None and now >= reporting_until and not summary_printed:
            summary_printed = True
            result = {
                "workers": len(workers),
                "callers_per_worker": args.callers,
                "spawns": spawns,
                "sent": sent,
                "report_bytes": len(_encode("stats", {**templates[0], "user_classes_count":
                                    workers[0].users, "user_count": args.callers}, workers[0].id)),
                "heartbeat_round_trip_ms": _quantiles(round_trips_ms),
            }  # fmt: skip
            print(json.dumps(result), flush=True)
        for sock, _ in poller.poll(timeout=20):
            worker = by_socket[sock]
            while True:
                try:
                    message = _decode(worker.socket.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
                if message.type == "heartbeat" and worker.beats:
                    sent_at = worker.beats.popleft()
                    if reporting_until is not None and (
                        reporting_until - args.seconds <= sent_at < reporting_until
                    ):
                        round_trips_ms.append((time.monotonic() - sent_at) * 1000)
                elif message.type == "spawn":
                    spawns += 1
                    worker.send("spawning", None)
                    worker.users = dict(message.data["user_classes_count"])
                    classes = worker.users
                    complete = {"user_classes_count": classes, "user_count": sum(classes.values())}
                    worker.send("spawning_complete", complete)
                elif message.type == "quit":
                    return 0


def _tally(sent: dict[str, Any], payload: dict[str, Any]) -> None:
    sent["reports"] += 1
    voice = payload["voice"]
    for name, n in voice["counters"].items():
        sent["counters"][name] = sent["counters"].get(name, 0) + n
    for name, n in voice["errors"].items():
        sent["errors"][name] = sent["errors"].get(name, 0) + n
    sent["ttfb"] += voice["histograms"]["ttfb_ms"]["count"]
    sent["requests"] += sum(entry["num_requests"] for entry in payload["stats"])


if __name__ == "__main__":
    sys.exit(main())
