"""The master's harness notices workers that Locust marks missing (Locust fires no event for
it) and counts the calls their reports left in flight; a fake runner stands in for Locust's."""

from __future__ import annotations

from types import SimpleNamespace

from loadtest.runtime.harness import Harness


def _master(clients: dict[str, SimpleNamespace]) -> Harness:
    environment = SimpleNamespace(
        parsed_options=SimpleNamespace(master=True, worker=False),
        runner=SimpleNamespace(clients=clients),
    )
    return Harness(environment)


def _report(calls: int, ended: int) -> dict[str, object]:
    return {"counters": {"calls": calls, "calls_ended": ended}}


def test_a_missing_worker_is_recorded_once_with_its_calls_in_flight() -> None:
    w1, w2 = SimpleNamespace(id="w1", state="running"), SimpleNamespace(id="w2", state="running")
    harness = _master({"w1": w1, "w2": w2})
    harness.absorb(_report(5, 2), worker="w1")
    harness.absorb(_report(3, 0), worker="w1")  # deltas add up: 8 started, 2 ended
    harness.absorb(_report(4, 4), worker="w2")
    harness.watch_workers()
    assert harness.workers_lost == []
    w1.state = "missing"
    harness.watch_workers()
    harness.watch_workers()
    (lost,) = harness.workers_lost
    assert lost["worker"] == "w1" and lost["calls_in_flight"] == 6
    assert lost["lost_at"].endswith("+00:00")
    assert harness.total.counters["calls"] == 12  # the totals merged as before


def test_a_worker_that_comes_back_was_not_lost_and_one_removed_stays_lost() -> None:
    w1 = SimpleNamespace(id="w1", state="missing")
    clients = {"w1": w1}
    harness = _master(clients)
    harness.watch_workers()
    assert [e["worker"] for e in harness.workers_lost] == ["w1"]
    w1.state = "running"  # its heartbeats resumed
    harness.watch_workers()
    assert harness.workers_lost == []
    w1.state = "missing"
    harness.watch_workers()
    del clients["w1"]  # Locust drops a worker missing for a minute
    harness.watch_workers()
    assert [e["worker"] for e in harness.workers_lost] == ["w1"]
