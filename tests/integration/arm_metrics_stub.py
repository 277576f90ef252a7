"""A local HTTPS stand-in for the ARM metrics API (``GET {resourceId}/providers/
Microsoft.Insights/metrics``), with a throw-away CA, for the Azure Monitor poller tests.

It answers in the documented response shape (api-version 2024-02-01, see the REST spec's
``GetMetric.json`` example): per requested metric one ``value`` entry whose single series holds
three one-minute buckets ending at the requested timespan's end: ``value - 10``, ``value`` and
a bucket still without data (no aggregation field), as real recent windows look. A per-resource
script of error statuses is served first, in order.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.tlsfiles import TlsFiles

METRICS_SUFFIX = "/providers/microsoft.insights/metrics"

_ERRORS = {
    401: ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is invalid."),
    403: ("AuthorizationFailed", "The client does not have authorization to perform action "
          "'Microsoft.Insights/metrics/read' over scope '{rid}'."),
    404: ("ResourceNotFound", "The Resource '{rid}' was not found."),
    429: ("TooManyRequests", "The request is being throttled."),
    500: ("InternalServerError", "Something went wrong."),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request the stub answered."""

    resource_id: str
    path: str
    query: dict[str, str]
    authorization: str | None
    status: int
    at_s: float  # time.monotonic()


@dataclass
class ArmMetricsStub:
    """State of the stub: values to serve, scripted errors, and what it saw."""

    values: dict[tuple[str, str], float] = field(default_factory=dict)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    retry_after: dict[int, str] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    endpoint: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_value(self, resource_id: str, metric: str, value: float) -> None:
        with self.lock:
            self.values[(resource_id.lower(), metric.lower())] = value

    def script(self, resource_id: str, *statuses: int) -> None:
        """Answer the next requests for ``resource_id`` with these statuses (a 0 = success)."""
        with self.lock:
            self.scripts.setdefault(resource_id.lower(), []).extend(statuses)

    def seen(self) -> list[SeenRequest]:
        with self.lock:
            return list(self.requests)

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        resource_id = path[: path.lower().index(METRICS_SUFFIX)]
        with self.lock:
            script = self.scripts.get(resource_id.lower(), [])
            status = (script.pop(0) if script else 0) or 200
            if status == 200 and not any(k[0] == resource_id.lower() for k in self.values):
                status = 404
        if status != 200:
            code, message = _ERRORS[status]
            body = {"error": {"code": code, "message": message.format(rid=resource_id)}}
            headers = (
                {"Retry-After": self.retry_after[status]} if status in self.retry_after else {}
            )
            return status, headers, json.dumps(body).encode()
        return 200, {}, json.dumps(self._metrics(resource_id, query)).encode()

    def _metrics(self, resource_id: str, query: dict[str, str]) -> dict[str, Any]:
        start_raw, end_raw = query["timespan"].split("/")
        end = datetime.fromisoformat(end_raw).replace(second=0, microsecond=0)
        stamps = [(end - timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ") for n in (2, 1, 0)]
        fields = [a.strip().lower() for a in query["aggregation"].split(",")]
        value = []
        for name in query["metricnames"].split(","):
            with self.lock:
                number = self.values.get((resource_id.lower(), name.lower()))
            data: list[dict[str, Any]] = [{"timeStamp": stamp} for stamp in stamps]
            if number is not None:
                for f in fields:
                    data[0][f], data[1][f] = number - 10.0, number
            value.append({
                "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{name}",
                "type": "Microsoft.Insights/metrics",
                "name": {"value": name, "localizedValue": name},
                "displayDescription": f"{name} of the app.",
                "unit": "Percent",
                "timeseries": [{"metadatavalues": [], "data": data}],
                "errorCode": "Success",
            })  # fmt: skip
        return {
            "cost": 59,
            "timespan": f"{start_raw}/{end_raw}",
            "interval": query.get("interval", "PT1M"),
            "value": value,
            "namespace": "microsoft.app/containerapps",
            "resourceregion": "westeurope",
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        stub = self.server.stub
        if METRICS_SUFFIX not in parts.path.lower():
            headers: dict[str, str] = {}
            status, body = 400, b'{"error":{"code":"BadRequest","message":"?"}}'
        else:
            status, headers, body = stub.answer(parts.path, query)
        with stub.lock:
            stub.requests.append(
                SeenRequest(
                    parts.path[: parts.path.lower().find(METRICS_SUFFIX)],
                    parts.path,
                    query,
                    self.headers.get("Authorization"),
                    status,
                    time.monotonic(),
                )
            )
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: ArmMetricsStub


class RunningStub:
    """The stub served over HTTPS on 127.0.0.1 (port 0) in a thread; use as a context manager."""

    def __init__(self, tls: TlsFiles) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.stub = self._server.stub = ArmMetricsStub()
        self.stub.endpoint = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ArmMetricsStub:
        self._thread.start()
        return self.stub

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
