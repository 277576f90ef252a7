"""The fixed hot-path workload (`python -m bench.hotpath`): real calls on real
loopback sockets on a virtual clock, in a child interpreter (it monkey-patches and swaps the
runtime's clock).

What it checks is the caller's behaviour, never its speed: the workload does the work it
claims (every caller streams in real time of the virtual clock, turns are answered and
measured) and a finished call leaves no reference cycle — the caller moves each call's
objects out of the cyclic collector's reach (``gc.freeze``), so a cycle would never be freed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration]


def _run(pcm_dir: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.hotpath", "--pcm-dir", str(pcm_dir), *args],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_workload_streams_in_virtual_real_time_and_turns_are_measured(
    espeak_cache_dir: Path,
) -> None:
    counts = _run(espeak_cache_dir, "--callers", "20", "--seconds", "12")
    # 20 callers × 12 s at 20 ms: every frame of every grid slot was sent, none late or lost
    assert counts["frames"] == 20 * 12 * 50
    assert counts["ttfb"] > 0 and counts["turns"] > 0  # the peer answered; turns completed
    assert counts["received"] > counts["ttfb"]  # answers are many frames each


def test_finished_calls_leave_no_reference_cycle(espeak_cache_dir: Path) -> None:
    counts = _run(espeak_cache_dir, "--callers", "8", "--seconds", "4", "--leak-check")
    assert counts["frames"] == 8 * 4 * 50
    # with the cyclic collector off, reference counting alone freed every call's objects
    assert counts["alive_after_end"] == {}
