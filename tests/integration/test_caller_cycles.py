"""Whole calls (``CallDriver.run_call``) against the reference agent leave nothing behind.

The caller moves each call's objects out of the cyclic collector's generations when the call
starts (``gc.freeze``), so a reference cycle left by a finished call would never be freed. In
a child interpreter with the collector off, calls that end normally, that the agent closes
mid-reply (1011), whose connection the agent resets and whose own send fails (a broken pipe:
the error raised by the socket is chained to the one the call keeps) must all be freed by
reference counting alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.procs import start_agent, stop
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration]

_CHILD = """
from gevent import monkey
monkey.patch_all()
import gc, json, random, sys
import socket
from loadtest.metrics.voice_stats import VoiceStats
from loadtest.runtime import transport
from loadtest.runtime.caller import CallDriver
from loadtest.runtime.library import AudioLibrary, conversation_config
from loadtest.settings import parse_settings

class Sink:
    run_ended_ns = None
    def __init__(self):
        self.stats = VoiceStats()
    def sample(self, name, value_ms, error, detail):
        pass

settings = parse_settings({"WS_URL": sys.argv[1], "PCM_DIR": sys.argv[2], "TURNS_PER_USER": "1",
                           "GREETING": "off", "FIRST_BYTE_TIMEOUT_SEC": "3"})
library = AudioLibrary.load(settings)
config = conversation_config(settings, library.agent_sample_rate)
sink = Sink()
if sys.argv[3] == "broken-pipe":  # the caller's own 50th send fails (EPIPE), before any read
    send_nowait = transport.WebSocketTransport.send_nowait
    def failing_send(self, message):
        self.sends = getattr(self, "sends", 0) + 1
        if self.sends == 50:
            self._sock.shutdown(socket.SHUT_WR)
        send_nowait(self, message)
    transport.WebSocketTransport.send_nowait = failing_send
gc.collect()
gc.disable()
for seed in range(2):
    CallDriver(settings, library, config, sink, random.Random(seed)).run_call()
gc.unfreeze()
names = {"_Stream", "Conversation", "WebSocketTransport", "CallDriver", "TurnPlan"}
alive = sorted(type(o).__name__ for o in gc.get_objects() if type(o).__name__ in names)
print(json.dumps({"alive": alive, "calls": sink.stats.counters.get("calls_connected", 0),
                  "errors": sink.stats.errors}))
"""


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (None, None),
        ("close_1011=1", "closed_mid_turn"),
        ("reset=1", "closed_mid_turn"),
        ("broken-pipe", "closed_mid_turn"),
    ],
)
def test_finished_calls_are_freed_without_the_cyclic_collector(
    tmp_path: Path, espeak_cache_dir: Path, fault: str | None, error: str | None
) -> None:
    agent_fault = fault if fault and "=" in fault else None
    args = ["--latency-ms", "600", *(["--fault", agent_fault] if agent_fault else [])]
    agent = start_agent(cpus=None, ground_truth=None, log=tmp_path / "agent.log", args=args)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, agent.url, str(espeak_cache_dir), str(fault)],
            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
        )  # fmt: skip
    finally:
        stop([agent.process])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["calls"] == 2  # both calls connected and ran
    if error is not None:
        assert result["errors"].get(error, 0) >= 1, result  # the fault really ended the calls
    assert result["alive"] == [], result
