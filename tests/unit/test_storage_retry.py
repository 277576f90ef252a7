"""One deadline for a storage command: transient failures retried with jittered backoff and
announced, the rest at once; on a fake clock (no sleeping)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from loadtest.errors import ConfigError, StorageUnreachable
from loadtest.storage.retry import RetryWindow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Down(Exception):
    pass


def _window(clock: Clock, lines: list[str], timeout_s: float = 10.0) -> RetryWindow:
    return RetryWindow(
        timeout_s, on_retry=lines.append, clock=clock, sleep=clock.sleep, rng=random.Random(1)
    )


def _flaky(failures: int) -> tuple[list[int], Callable[[], str]]:
    calls = [0]

    def attempt() -> str:
        calls[0] += 1
        if calls[0] <= failures:
            raise Down("connection refused")
        return "data"

    return calls, attempt


def test_transient_failures_are_retried_and_announced_until_it_works() -> None:
    clock, lines = Clock(), []
    calls, attempt = _flaky(3)
    window = _window(clock, lines)
    result = window.run(
        "download a.pcm", attempt, transient=lambda e: isinstance(e, Down), describe=str
    )
    assert result == "data" and calls == [4] and window.retries == 3
    assert [line.split(" in ")[0] for line in lines] == [
        f"Blob unreachable (connection refused), retry {n}" for n in (1, 2, 3)
    ]
    assert all(0 <= s <= 5.0 for s in clock.slept) and len(clock.slept) == 3


def test_time_up_is_one_storage_unreachable_naming_what_and_why() -> None:
    clock, lines = Clock(), []
    _, attempt = _flaky(10**6)
    window = _window(clock, lines, timeout_s=12.0)
    with pytest.raises(StorageUnreachable) as caught:
        window.run("list x", attempt, transient=lambda e: True, describe=str)
    assert clock.now - 100.0 == pytest.approx(12.0)  # the deadline, not a moment later
    message = str(caught.value)
    assert message == "list x: connection refused; gave up when --timeout (12 s) ran out"
    assert caught.value.exit_code == 2 and len(lines) == window.retries >= 3
    assert "(gives up in 12 s)" in lines[0]


def test_a_failure_that_is_not_transient_is_not_retried() -> None:
    clock, lines = Clock(), []
    _, attempt = _flaky(1)
    with pytest.raises(Down):
        _window(clock, lines).run("x", attempt, transient=lambda e: False, describe=str)
    assert lines == [] and clock.slept == []


def test_the_window_is_shared_by_every_call_of_a_command() -> None:
    clock, lines = Clock(), []
    window = _window(clock, lines, timeout_s=5.0)
    clock.now += 6.0  # the first calls used the time up
    _, attempt = _flaky(1)
    with pytest.raises(StorageUnreachable):
        window.run("y", attempt, transient=lambda e: True, describe=str)
    assert lines == []


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="--timeout 0"):
        RetryWindow(0)
