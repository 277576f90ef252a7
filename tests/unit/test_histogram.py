from __future__ import annotations

import json
import random

import pytest

from loadtest.metrics.histogram import Histogram


def test_percentiles_within_one_bucket_of_exact() -> None:
    rng = random.Random(3)
    values = [rng.uniform(0, 3000) for _ in range(5000)]
    hist = Histogram(1.0)
    for v in values:
        hist.record(v)
    ordered = sorted(values)
    for fraction in (0.5, 0.9, 0.95, 0.99):
        exact = ordered[max(0, int(fraction * len(values) + 0.999999) - 1)]
        assert abs(hist.percentile(fraction) - exact) <= 1.0  # type: ignore[operator]
    assert hist.max == max(values)
    assert hist.summary().mean == pytest.approx(sum(values) / len(values))


def test_merge_is_exact_and_payload_survives_json() -> None:
    workers = [Histogram(1.0) for _ in range(3)]
    pooled = Histogram(1.0)
    rng = random.Random(1)
    for hist in workers:
        for _ in range(1000):
            v = rng.lognormvariate(6, 0.5)
            hist.record(v)
            pooled.record(v)
    master = Histogram(1.0)
    for hist in workers:
        master.merge(json.loads(json.dumps(hist.serialize())))
    assert master.count == 3000 == pooled.count
    assert master.serialize()["buckets"] == pooled.serialize()["buckets"]
    assert master.summary() == pooled.summary() or master.sum == pytest.approx(pooled.sum)
    assert master.percentile(0.99) == pooled.percentile(0.99)


def test_reset_ships_deltas_only() -> None:
    worker, master = Histogram(), Histogram()
    worker.record(10)
    master.merge(worker.serialize())
    worker.reset()
    worker.record(20)
    master.merge(worker.serialize())
    assert master.count == 2 and master.percentile(1.0) == 20.0


def test_cumulative_buckets_and_errors() -> None:
    hist = Histogram(0.5)
    for v in (0.1, 0.7, 1.2, 5.0, -3.0):
        hist.record(v)
    assert hist.cumulative([0.5, 1.0, 2.5, 10.0]) == [2, 3, 4, 5]
    assert Histogram().percentile(0.5) is None and Histogram().summary().count == 0
    with pytest.raises(ValueError, match="cannot merge"):
        Histogram(1.0).merge(Histogram(0.1))
