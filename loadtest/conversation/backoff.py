"""Reconnect backoff: capped exponential with full jitter (pure; randomness passed in).

``delay = uniform(0, min(cap_ms, base_ms × factor ** attempt))`` — "full jitter", which
spreads many callers that lost their connections at the same moment (an agent restart) over
the whole window instead of reconnecting in lockstep.

:class:`ConnectFailures` carries one caller's consecutive failures *across calls*: a load
test places the next call as soon as one ends, so a backoff that restarted with every call
would retry a dead agent several times a second per caller — the load tool becoming the
outage. Only a successful connect resets it. While the agent stays down, a caller's waits
settle at ``uniform(0, cap_ms)``: one attempt per ``cap_ms / 2`` on average.

Call order (the edge)::

    failures = ConnectFailures(ReconnectBackoff(base_ms, cap_ms))
    # before every connection attempt, first of a call or retry:
    sleep(failures.delay_ms(rng) / 1000)         # 0 after a success
    # after it: failures.failed() or failures.connected()
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from loadtest.errors import ConfigError

__all__ = ["ConnectFailures", "ReconnectBackoff"]


@dataclass(frozen=True, slots=True)
class ReconnectBackoff:
    """Delays before reconnect attempts.

    Attributes:
        base_ms: ceiling of the first delay (seed ``WS_RECONNECT_BACKOFF_BASE_SEC`` = 0.2 s).
        cap_ms: no delay is ever longer than this.
        factor: growth of the ceiling per attempt.
    """

    base_ms: float = 200.0
    cap_ms: float = 10_000.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base_ms) and self.base_ms > 0.0):
            raise ConfigError(f"backoff base_ms={self.base_ms!r} is not allowed (> 0)")
        if not (math.isfinite(self.cap_ms) and self.cap_ms >= self.base_ms):
            raise ConfigError(f"backoff cap_ms={self.cap_ms!r} is not allowed (>= base_ms)")
        if not (math.isfinite(self.factor) and self.factor >= 1.0):
            raise ConfigError(f"backoff factor={self.factor!r} is not allowed (>= 1)")

    def ceiling_ms(self, attempt: int) -> float:
        """Largest delay for ``attempt`` (0 = the first reconnect after a drop)."""
        if attempt < 0:
            raise ValueError(f"attempt={attempt} must be >= 0")
        if self.factor == 1.0:
            return self.base_ms
        # Past the cap the power only overflows; stop growing once it cannot matter.
        limit = math.log(self.cap_ms / self.base_ms, self.factor)
        if attempt >= limit:
            return self.cap_ms
        return min(self.cap_ms, self.base_ms * self.factor**attempt)

    def delay_ms(self, attempt: int, rng: random.Random) -> float:
        """A delay drawn uniformly from ``[0, ceiling_ms(attempt)]`` (one ``rng`` draw)."""
        return rng.uniform(0.0, self.ceiling_ms(attempt))


class ConnectFailures:
    """One caller's consecutive connection failures, across its calls."""

    __slots__ = ("backoff", "count")

    def __init__(self, backoff: ReconnectBackoff) -> None:
        self.backoff = backoff
        self.count = 0

    def delay_ms(self, rng: random.Random) -> float:
        """The wait before the next attempt: 0 if the last one connected (or there was none),
        else a full-jitter draw for the ``count``-th consecutive failure (one ``rng`` draw)."""
        if not self.count:
            return 0.0
        return self.backoff.delay_ms(self.count - 1, rng)

    def failed(self) -> None:
        """An attempt failed: the next wait's ceiling grows (up to the cap)."""
        self.count += 1

    def connected(self) -> None:
        """An attempt connected: the next attempt (a later call) starts at once."""
        self.count = 0
