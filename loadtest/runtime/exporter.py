"""Serve ``/metrics`` and ``/healthz`` from a Locust process (edge: gevent WSGI server).

The master (or a standalone process, as Azure Load Testing runs each engine) exposes the
merged voice histograms, counters and run state on ``--metrics-port`` (default 9646). The
families are built at scrape time by :class:`~loadtest.metrics.exposition.VoiceCollector`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from gevent.pywsgi import WSGIServer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from loadtest.metrics.exposition import Snapshot, VoiceCollector

__all__ = ["DEFAULT_METRICS_PORT", "metrics_app", "serve_metrics"]

DEFAULT_METRICS_PORT = 9646
log = logging.getLogger("voice-loadtest")

_StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def metrics_app(
    registry: CollectorRegistry,
) -> Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]:
    """A WSGI app: ``/metrics`` (Prometheus text format), ``/healthz`` (``ok``), else 404."""

    def app(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest(registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]

    return app


def serve_metrics(snapshot: Callable[[], Snapshot], host: str, port: int) -> WSGIServer | None:
    """Start serving in the background; ``None`` (with one warning) if the port is taken."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VoiceCollector(snapshot))
    server = WSGIServer((host, port), metrics_app(registry), log=None, error_log=None)
    try:
        server.start()
    except OSError as exc:
        log.warning("voice-loadtest: metrics endpoint not started on %s:%s: %s", host, port, exc)
        return None
    log.info("voice-loadtest: Prometheus metrics on http://%s:%s/metrics", host or "0.0.0.0", port)
    return server
