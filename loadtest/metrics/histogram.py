"""Mergeable histograms with a fixed resolution (core: pure, no I/O).

A :class:`Histogram` keeps a sparse count per value bucket of width ``resolution`` (in the
histogram's unit, e.g. 1 ms for latencies, 0.1 ms for frame lateness). Buckets are fixed, so
merging is exact: the master's counts equal the sum of what every worker recorded, and
percentiles of the merged data are those of all samples pooled — never an average of
per-worker percentiles. Memory grows with the number of *distinct* buckets hit, not with
samples.

Call order on a worker: ``record`` many times → ``serialize`` (ships the counts) → ``reset``
(so the next report carries only new samples). On the master: ``merge`` each payload.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Histogram", "Percentiles"]


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Summary of a histogram, in its unit (``None`` fields when it is empty)."""

    count: int
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count, "p50": self.p50, "p90": self.p90, "p95": self.p95,
            "p99": self.p99, "max": self.max, "mean": self.mean,
        }  # fmt: skip


class Histogram:
    """Counts of non-negative values in buckets ``[k·resolution, (k+1)·resolution)``.

    Negative values are clamped to 0 (lateness can be a hair below zero on a coarse clock).
    ``sum`` and ``max`` are kept exactly.
    """

    __slots__ = ("_counts", "count", "max", "resolution", "sum")

    def __init__(self, resolution: float = 1.0) -> None:
        if resolution <= 0:
            raise ValueError("resolution must be > 0")
        self.resolution = resolution
        self._counts: dict[int, int] = {}
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def record(self, value: float, times: int = 1) -> None:
        """Add ``value`` (in the histogram's unit) ``times`` times."""
        if value < 0.0:
            value = 0.0
        key = int(value / self.resolution)
        self._counts[key] = self._counts.get(key, 0) + times
        self.count += times
        self.sum += value * times
        if value > self.max:
            self.max = value

    def merge(self, other: Histogram | Mapping[str, object]) -> None:
        """Add ``other`` (a histogram or a :meth:`serialize` payload) into this one."""
        payload = other.serialize() if isinstance(other, Histogram) else other
        resolution = float(payload["resolution"])  # type: ignore[arg-type]
        if not math.isclose(resolution, self.resolution):
            raise ValueError(f"cannot merge resolution {resolution} into {self.resolution}")
        # The master merges every worker's report here (a hundred buckets or so each, every
        # 3 s from every worker): the loop is kept to one lookup and one store per bucket.
        counts = self._counts
        get = counts.get
        for key, times in payload["buckets"]:  # type: ignore[attr-defined]
            key = int(key)
            counts[key] = get(key, 0) + int(times)
        self.count += int(payload["count"])  # type: ignore[call-overload]
        self.sum += float(payload["sum"])  # type: ignore[arg-type]
        self.max = max(self.max, float(payload["max"]))  # type: ignore[arg-type]

    def serialize(self) -> dict[str, object]:
        """A msgpack/JSON-friendly payload that :meth:`merge` accepts."""
        return {
            "resolution": self.resolution,
            "buckets": sorted(self._counts.items()),
            "count": self.count,
            "sum": self.sum,
            "max": self.max,
        }

    def reset(self) -> None:
        self._counts.clear()
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def percentile(self, fraction: float) -> float | None:
        """Value below which ``fraction`` (0..1) of samples fall; bucket midpoint, ≤ max."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for key in sorted(self._counts):
            seen += self._counts[key]
            if seen >= rank:
                return min((key + 0.5) * self.resolution, self.max)
        return self.max

    def count_le(self, bound: float) -> int:
        """Number of samples ≤ ``bound`` (exact when ``bound`` is on a bucket edge)."""
        limit = bound / self.resolution
        return sum(n for key, n in self._counts.items() if key + 1 <= limit + 1e-9)

    def cumulative(self, bounds: Iterable[float]) -> list[int]:
        """Counts ≤ each of ``bounds`` (ascending): Prometheus ``_bucket`` values."""
        return [self.count_le(bound) for bound in bounds]

    def summary(self) -> Percentiles:
        if self.count == 0:
            return Percentiles(0, None, None, None, None, None, None)
        return Percentiles(
            count=self.count,
            p50=self.percentile(0.50),
            p90=self.percentile(0.90),
            p95=self.percentile(0.95),
            p99=self.percentile(0.99),
            max=self.max,
            mean=self.sum / self.count,
        )
