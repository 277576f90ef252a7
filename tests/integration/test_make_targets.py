"""The Makefile's run targets as a user types them, against a cache the user made: it survives
byte for byte, the run plays it and says so, and everything a run writes lands in reports/.

make runs with this interpreter's environment (``VENV``) in a scratch working directory, so
the repository is never written to; ``-o`` keeps make from rebuilding that environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadtest.audio.cache import describe_cache
from tests.integration.conftest import REPO_ROOT, running_agent

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_VENV = Path(sys.prefix)


def _make(cwd: Path, *args: str, timeout: int = 150) -> subprocess.CompletedProcess[str]:
    command = [
        "make", "--no-print-directory", "-f", str(REPO_ROOT / "Makefile"), f"VENV={_VENV}",
        "-o", str(_VENV / "bin" / ".installed"), *args,
    ]  # fmt: skip
    # As a user types it: no settings of an enclosing make (`make test`) or of a Locust run.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCUST_", "WS_", "MAKE", "MFLAGS"))
    }
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's own cache: the built-in scenarios in another voice (en-GB) than the default
    (en-US) — what a plain generate-audio over it would have replaced."""
    out = tmp_path_factory.mktemp("user-cache")
    done = subprocess.run(
        [sys.executable, "-m", "loadtest", "generate-audio", "--voice", "en-gb", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def agent() -> Iterator[str]:
    """The reference agent; yields host:port."""
    with running_agent("--latency-ms", "700") as url:
        yield url.removeprefix("ws://").split("/", 1)[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _summary(cwd: Path) -> dict[str, Any]:
    return json.loads((cwd / "reports" / "summary.json").read_text())


def _assert_played(cwd: Path, done: subprocess.CompletedProcess[str], cache: Path) -> None:
    identity = describe_cache(cache)
    # The first line says which cache the run uses, and that it was left as it is.
    assert done.stdout.splitlines()[0].startswith(f"audio: using {cache}: espeak (en-gb)"), (
        done.stdout[-2000:] + done.stderr[-2000:]
    )
    audio = _summary(cwd)["audio"]
    assert audio["digest"] == identity.digest and audio["voices"] == ["en-gb"]
    assert audio["engines"] == ["espeak"] and audio["files"] == 8
    # Nothing a run writes lands beside the reports (no Locust CSVs in the working directory).
    assert sorted(p.name for p in cwd.iterdir()) == ["reports"]
    assert (cwd / "reports" / "locust_stats.csv").is_file()


def test_run_load_test_plays_the_users_cache_and_leaves_it_whole(
    tmp_path: Path, user_cache: Path, agent: str
) -> None:
    before = _snapshot(user_cache)
    done = _make(
        tmp_path, "run_load_test", f"URL=ws://{agent}/api/v1/media/stream", f"PCM_DIR={user_cache}",
        "CONVERSATIONS=2", "CONCURRENT=2", "RUN_TIME=6s", "WORKERS=1",
    )  # fmt: skip
    # Whatever the verdict (a busy machine can make a short run invalid), the run happened.
    assert (tmp_path / "reports" / "summary.json").is_file(), (
        done.stdout[-2000:] + done.stderr[-2000:]
    )
    assert _snapshot(user_cache) == before
    _assert_played(tmp_path, done, user_cache)


def test_demo_plays_the_users_cache_and_leaves_it_whole(tmp_path: Path, user_cache: Path) -> None:
    before = _snapshot(user_cache)
    done = _make(tmp_path, "demo", f"PCM_DIR={user_cache}", "RUN_TIME=6s")
    # Whatever the verdict (a busy machine can make a short run invalid), the run happened.
    assert (tmp_path / "reports" / "summary.json").is_file(), (
        done.stdout[-2000:] + done.stderr[-2000:]
    )
    assert _snapshot(user_cache) == before
    _assert_played(tmp_path, done, user_cache)


def test_alt_export_packages_the_users_cache_and_leaves_it_whole(
    tmp_path: Path, user_cache: Path
) -> None:
    before = _snapshot(user_cache)
    done = _make(
        tmp_path, "alt-export", "URL=wss://agent.example.com/api/v1/media/stream",
        f"PCM_DIR={user_cache}", f"ALT_DIR={tmp_path / 'alt'}",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _snapshot(user_cache) == before
    assert done.stdout.startswith(f"audio: using {user_cache}: espeak (en-gb)")
    exported = {p.name: p.read_bytes() for p in (tmp_path / "alt").glob("*.pcm")}
    assert exported == {name: data for name, data in before.items() if name.endswith(".pcm")}


def test_an_empty_folder_gets_the_offline_audio(tmp_path: Path) -> None:
    out = tmp_path / "fresh"
    done = _make(tmp_path, "audio", f"PCM_DIR={out}")
    assert done.returncode == 0, done.stderr
    identity = describe_cache(out)
    assert identity.engines == ("espeak",) and identity.voices == ("en-us",)
    assert identity.files == 8 and f"audio: {out}: espeak (en-us), 8 files" in done.stdout


def test_the_seeds_acs_media_target(tmp_path: Path, user_cache: Path, agent: str) -> None:
    """``make run_load_test_acs_media HOST= USERS= TIME=`` as the seed has it: HOST without a
    scheme or path becomes ws://HOST/api/v1/media/stream."""
    done = _make(
        tmp_path, "run_load_test_acs_media", f"HOST={agent}", "USERS=3", "SPAWN_RATE=3",
        "TIME=6s", "WORKERS=1", f"PCM_DIR={user_cache}",
    )  # fmt: skip
    # Whatever the verdict (a busy machine can make a short run invalid), the run happened.
    assert (tmp_path / "reports" / "summary.json").is_file(), (
        done.stdout[-2000:] + done.stderr[-2000:]
    )
    run = _summary(tmp_path)["run"]
    assert run["target"] == f"ws://{agent}/api/v1/media/stream"
    assert (run["users"], run["spawn_rate"], run["run_time_s"]) == (3, 3, 6)
    assert _summary(tmp_path)["settings"]["WS_PROTOCOL"] == "acs"
