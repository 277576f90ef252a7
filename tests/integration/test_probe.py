"""The start-up probe, counted where it lands: at a real agent simulator process.

The probe is one call that does what a real call's opening does and ends normally; the
simulator parses every message with the same protocol code it uses for real calls and counts
connections, messages by kind, protocol violations and close codes. That a whole run places
exactly one probe is counted at the agent too: by `voice-loadtest run`
(``test_protocols_run.py``: the Twilio marks run) and by a Locust master started on its own
(``test_distributed.py``); here, that ``--no-probe`` places none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.runtime.locust_main import LOCUSTFILE
from loadtest.runtime.probe import cache_rate, probe
from loadtest.settings import parse_settings
from tests.integration.realtime_client import AgentProcess

pytestmark = pytest.mark.integration

_COUNTS = "voice_loadtest_agent_inbound_messages_total"

EXPECTED = {  # protocol → caller messages by kind the agent counted for the probe
    "acs": {"AudioMetadata": 1.0},
    "twilio": {"connected": 1.0, "start": 1.0, "stop": 1.0},
    "raw": {},
}


@pytest.mark.parametrize("protocol", sorted(EXPECTED))
def test_the_probe_speaks_the_protocol_and_closes_normally(
    protocol: str, espeak_cache_dir: Path
) -> None:
    settings = parse_settings(
        {"WS_PROTOCOL": protocol, "TWILIO_CUSTOM_PARAMETERS": "tenant=probe-test"}
    )
    with AgentProcess("--protocol", protocol) as agent:
        probe(settings.with_url(agent.url), cache_rate(espeak_cache_dir))
        metrics = agent.metrics_once_counted("voice_loadtest_agent_closes_total", code="1000")
    assert metrics[("voice_loadtest_agent_connections_total", ())] == 1
    received = {dict(labels)["kind"]: v for (name, labels), v in metrics.items() if name == _COUNTS}
    assert received == EXPECTED[protocol]
    bad = {labels: v for (name, labels), v in metrics.items() if "bad_inputs" in name and v}
    assert bad == {}
    assert metrics[("voice_loadtest_agent_closes_total", (("code", "1000"),))] == 1
    (opened,) = [e for e in agent.logs if e.get("event") == "call open"]
    (closed,) = [e for e in agent.logs if e.get("event") == "call closed"]
    assert closed["close_code"] == 1000 and closed["bad_inputs"] == {}
    # the call's connection headers, as every call of the run sends them
    assert len(str(opened["call"])) == 36 and len(str(opened["correlation"])) == 36
    if protocol == "twilio":  # its own streamSid, from its own call id
        assert str(closed["stream"]).startswith("MZ") and len(str(closed["stream"])) == 34


def test_the_probe_declares_the_caches_rate(espeak_cache_dir: Path, tmp_path: Path) -> None:
    assert cache_rate(espeak_cache_dir) == 16000
    assert cache_rate(tmp_path / "no-cache-on-this-master") == 16000  # the documented default


def test_no_probe_places_no_call(tmp_path: Path, espeak_cache_dir: Path) -> None:
    """A standalone `locust -f` run with --no-probe: the agent sees the callers' calls only."""
    summary = tmp_path / "summary.json"
    env = {**os.environ, "PCM_DIR": str(espeak_cache_dir), "GREETING": "off",
           "TURNS_PER_USER": "1", "SCENARIO_WEIGHTS": "quick_question=1"}  # fmt: skip
    with AgentProcess("--latency-ms", "600") as agent:
        done = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "2",
             "-r", "2", "-t", "6s", "--host", agent.url, "--no-probe", "--metrics-port", "0",
             "--summary-json", str(summary)],
            env=env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        connections = agent.metric("voice_loadtest_agent_connections_total")
    # The verdict is not this test's subject (a busy machine may make the run invalid).
    assert done.returncode in (0, 2) and summary.is_file(), done.stderr[-2000:]
    counts = json.loads(summary.read_text())["counts"]
    assert counts["connect_attempts"] >= 2
    assert connections == counts["connect_attempts"]
