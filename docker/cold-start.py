"""Measure the image's cold start: `docker run` until each role is ready (stdlib only).

    python3 docker/cold-start.py [IMAGE] [--runs 5]

With the image already local (a registry pull is not included), it times from just before
``docker run -d`` until:

* agent       its /healthz answers (published 8010);
* master      its harness /healthz answers (web UI mode, published 9646);
* worker      its /healthz answers (the audio cache is loaded and checked by then);
* first frame a headless standalone caller's first audio frame reaches a warm agent (the
              agent's ``voice_loadtest_agent_inbound_frames_total`` goes up).

Every container is on a private docker network with ports published on 127.0.0.1 only,
and is removed afterwards. Prints the median and range over ``--runs`` starts.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable

_POLL_S = 0.02


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return str(response.read().decode())
    except OSError:
        return None


def _published(container: str, port: int) -> str:
    return _docker("port", container, f"{port}/tcp").splitlines()[0].replace("0.0.0.0", "127.0.0.1")


def _inbound_frames(metrics_url: str) -> float:
    page = _get(metrics_url) or ""
    for line in page.splitlines():
        if line.startswith("voice_loadtest_agent_inbound_frames_total "):
            return float(line.split()[1])
    return 0.0


def _until(ready: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError("not ready within 60 s")
        time.sleep(_POLL_S)


def _wait_http(url: str) -> None:
    _until(lambda: _get(url) is not None)


def _wait_frames(metrics_url: str, above: float) -> None:
    _until(lambda: _inbound_frames(metrics_url) > above)


def measure(image: str, runs: int) -> dict[str, list[float]]:
    network = f"vlt-coldstart-{uuid.uuid4().hex[:8]}"
    _docker("network", "create", network)
    made: list[str] = []
    results: dict[str, list[float]] = {"agent": [], "master": [], "worker": [], "first frame": []}

    def start(role: str, *args: str, name: str | None = None) -> tuple[str, float]:
        name = name or f"{network}-{role}-{len(made)}"
        started = time.monotonic()
        _docker("run", "--detach", "--name", name, "--network", network, *args, image, role)
        made.append(name)
        return name, started

    try:
        agent, _ = start("agent", "-p", "127.0.0.1::9647", name=f"{network}-agent")
        metrics = f"http://{_published(agent, 9647)}/metrics"
        _wait_http(metrics)
        master, _ = start("master", name=f"{network}-master")
        for _ in range(runs):
            name, t0 = start("agent", "-p", "127.0.0.1::8010")
            _wait_http(f"http://{_published(name, 8010)}/healthz")
            results["agent"].append(time.monotonic() - t0)

            name, t0 = start("master", "-p", "127.0.0.1::9646")
            _wait_http(f"http://{_published(name, 9646)}/healthz")
            results["master"].append(time.monotonic() - t0)

            name, t0 = start("worker", "-p", "127.0.0.1::9646",
                             "-e", f"LOCUST_MASTER_NODE_HOST={master}")  # fmt: skip
            _wait_http(f"http://{_published(name, 9646)}/healthz")
            results["worker"].append(time.monotonic() - t0)

            before = _inbound_frames(metrics)
            name, t0 = start(
                "standalone", "-e", "LOCUST_HEADLESS=true", "-e", "LOCUST_USERS=1",
                "-e", "LOCUST_SPAWN_RATE=1", "-e", "LOCUST_RUN_TIME=30s", "-e", "GREETING=off",
                "-e", f"WS_URL=ws://{agent}:8010/api/v1/media/stream",
            )  # fmt: skip
            _wait_frames(metrics, before)
            results["first frame"].append(time.monotonic() - t0)
            _docker("rm", "--force", name)
    finally:
        for name in made:
            subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default="voice-loadtest:latest")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = measure(args.image, args.runs)
    print(f"cold start of {args.image} over {args.runs} runs (docker run -d -> ready):")
    for what, times in results.items():
        print(
            f"  {what:<12} median {statistics.median(times):5.2f} s  "
            f"(min {min(times):.2f}, max {max(times):.2f})"
        )


if __name__ == "__main__":
    main()
