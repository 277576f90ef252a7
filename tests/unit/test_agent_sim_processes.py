"""--processes: the settings each process gets and the ground-truth merge (no forking here;
tests/integration/test_agent_sim.py runs real processes on one port)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from loadtest.agent_sim.config import AgentSettings
from loadtest.agent_sim.processes import _child_settings, _merge, _reserve, part_path
from loadtest.errors import ConfigError


def test_each_process_gets_the_port_its_metrics_port_and_its_own_part(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    base = AgentSettings(port=0, metrics_port=9700, ground_truth=truth, processes=3)
    children = [_child_settings(base, 41000, index) for index in range(3)]
    assert [c.port for c in children] == [41000] * 3
    assert all(c.reuse_port for c in children)
    assert [c.process_index for c in children] == [0, 1, 2]
    assert [c.metrics_port for c in children] == [9700, 9701, 9702]
    assert [c.ground_truth for c in children] == [part_path(truth, i) for i in range(3)]
    ephemeral = _child_settings(AgentSettings(metrics_port=0), 41000, 2)
    assert ephemeral.metrics_port == 0 and ephemeral.ground_truth is None


def test_parts_merge_into_one_file_and_disappear(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    truth.write_text("stale\n")
    part_path(truth, 0).write_text('{"a":1}\n{"a":2}\n')
    part_path(truth, 2).write_text('{"a":3}\n')  # process 1 wrote nothing (file missing)
    _merge(truth, 3)
    assert truth.read_text() == '{"a":1}\n{"a":2}\n{"a":3}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truth.jsonl"]


@pytest.mark.parametrize("count", [0, 257])
def test_process_count_is_bounded(count: int) -> None:
    with pytest.raises(ConfigError, match="--processes"):
        AgentSettings(processes=count)


def test_a_port_in_use_is_one_clear_error() -> None:
    plain = socket.socket()  # a listener without SO_REUSEPORT owns its port exclusively
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    taken = plain.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"--port {taken}: cannot bind"):
            _reserve("127.0.0.1", taken)
    finally:
        plain.close()


def test_an_unwritable_ground_truth_fails_before_any_process_starts(tmp_path: Path) -> None:
    from loadtest.agent_sim.processes import run_processes

    started: list[AgentSettings] = []
    settings = AgentSettings(port=0, ground_truth=tmp_path / "missing" / "truth.jsonl")
    with pytest.raises(ConfigError, match="--ground-truth .*cannot write"):
        run_processes(settings, 2, lambda one, ready: started.append(one) or 0)
    assert started == []
