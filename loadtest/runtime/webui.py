"""The Voice view on Locust's web UI (edge: Flask routes and Locust's UI extension points).

On the master (or a standalone process) with the web UI on, :func:`attach_voice_view` adds:

* two tabs to Locust's own UI — "Voice" (latency percentiles per metric and per scenario)
  and "Voice SLO" (live SLO statuses, harness limits per worker, the verdict) — through
  ``template_args["extendedTabs"]`` / ``["extendedTables"]``; their rows ride on Locust's
  own ``/stats/requests`` poll as ``extended_stats``;
* links in Locust's "Download Data" tab (``extendedCsvFiles``) to the Voice view page and to
  the tables as CSV;
* routes, under Locust's ``--web-base-path`` like Locust's own: ``voice`` (the Voice view
  page, :mod:`loadtest.metrics.live_page`), ``voice/fragment`` (what the page refreshes),
  ``voice/data.json``, ``voice/table.csv`` and ``voice/slo.csv``.

Every route is behind Locust's ``--web-login`` when it is on (``auth_required_if_enabled``).
The data comes from :meth:`Harness.summary` with ``final=False``: the same merged histograms
as the run summary and ``/metrics``. Building it and the pages is the pure core's work
(:mod:`loadtest.metrics.live`, :mod:`loadtest.metrics.live_page`); this module only routes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from loadtest.metrics.live import (
    SLO_COLUMNS,
    VOICE_COLUMNS,
    live_data,
    slo_rows,
    to_csv,
    voice_rows,
)
from loadtest.metrics.live_page import render_live_body, render_live_page
from loadtest.runtime.harness import Harness

__all__ = ["attach_voice_view"]

_NO_STORE = {"Cache-Control": "no-store"}


def attach_voice_view(harness: Harness, web_ui: Any) -> None:
    """Add the Voice tabs, links and routes to Locust's ``web_ui`` (before it starts serving)."""
    from flask import Blueprint, Response, request

    options = harness.environment.parsed_options
    base_path = (getattr(options, "web_base_path", None) or "") if options is not None else ""
    blueprint = Blueprint("voice", __name__, url_prefix=base_path or None)

    def route(rule: str) -> Callable[[Callable[[], Response]], Callable[[], Response]]:
        def decorate(view: Callable[[], Response]) -> Callable[[], Response]:
            protected = web_ui.auth_required_if_enabled(view)
            blueprint.add_url_rule(rule, view.__name__, protected)
            return view

        return decorate

    def now() -> tuple[dict[str, Any], Any]:
        return harness.summary(final=False), harness.live_state()

    @route("/voice")
    def page() -> Response:
        summary, live = now()
        return Response(render_live_page(summary, live), mimetype="text/html", headers=_NO_STORE)

    @route("/voice/fragment")
    def fragment() -> Response:
        summary, live = now()
        return Response(render_live_body(summary, live), mimetype="text/html", headers=_NO_STORE)

    @route("/voice/data.json")
    def data() -> Response:
        summary, live = now()
        body = json.dumps(live_data(summary, live), indent=1)
        return Response(body, mimetype="application/json", headers=_NO_STORE)

    @route("/voice/table.csv")
    def table_csv() -> Response:
        summary, _ = now()
        return _csv(to_csv(voice_rows(summary), VOICE_COLUMNS), "voice_table.csv")

    @route("/voice/slo.csv")
    def slo_csv() -> Response:
        summary, live = now()
        return _csv(to_csv(slo_rows(summary, live), SLO_COLUMNS), "voice_slo.csv")

    def _csv(text: str, name: str) -> Response:
        disposition = {"Content-Disposition": f"attachment; filename={name}", **_NO_STORE}
        return Response(text, mimetype="text/csv", headers=disposition)

    def extend_stats(response: Response) -> Response:
        """Locust's UI polls ``/stats/requests``; the Voice tabs' rows ride along."""
        if request.endpoint != "locust.request_stats" or not response.is_json:
            return response
        payload = response.get_json(silent=True)
        if isinstance(payload, dict):
            summary, live = now()
            payload["extended_stats"] = [
                {"key": "voice", "data": voice_rows(summary)},
                {"key": "voice-slo", "data": slo_rows(summary, live)},
            ]
            response.set_data(json.dumps(payload))
        return response

    web_ui.app.register_blueprint(blueprint)
    web_ui.app.after_request(extend_stats)
    web_ui.template_args["extendedTabs"] = [
        {"title": "Voice", "key": "voice"},
        {"title": "Voice SLO", "key": "voice-slo"},
    ]
    web_ui.template_args["extendedTables"] = [
        {"key": "voice", "structure": [dict(c) for c in VOICE_COLUMNS]},
        {"key": "voice-slo", "structure": [dict(c) for c in SLO_COLUMNS]},
    ]
    web_ui.template_args["extendedCsvFiles"] = [
        {"href": "./voice", "title": "Open the Voice view (live charts, SLO, harness health)"},
        {"href": "./voice/table.csv", "title": "Download the voice table CSV"},
        {"href": "./voice/slo.csv", "title": "Download the voice SLO table CSV"},
        {"href": "./voice/data.json", "title": "Download the Voice view data JSON"},
    ]
