"""HEALTHCHECK of the voice-loadtest image: GET the URL the entrypoint wrote for its role.

The entrypoint writes the role's health endpoint (master/standalone/worker: the harness
``/healthz`` on ``$METRICS_PORT``; agent: ``/healthz`` on ``$AGENT_PORT``) to
``$VOICE_LOADTEST_HEALTH_FILE`` (default ``/tmp/voice-loadtest-health-url``). No file means a
one-off command (``id``, ``voice-loadtest report …``): healthy. Exit 0 healthy, 1 unhealthy.
Uses only the standard library: the image need not have curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

_TIMEOUT_S = 2.0


def main() -> int:
    path = os.environ.get("VOICE_LOADTEST_HEALTH_FILE", "/tmp/voice-loadtest-health-url")
    try:
        with open(path, encoding="utf-8") as handle:
            url = handle.read().strip()
    except FileNotFoundError:
        return 0
    if not url:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            ok = 200 <= response.status < 300
    except (OSError, urllib.error.URLError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not ok:
        print(f"unhealthy: {url}: HTTP {response.status}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
