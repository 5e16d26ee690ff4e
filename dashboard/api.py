"""The HTTP API (docs/protocols.md#api), served by the dashboard's Flask server.

    GET  /api/v1/chairs                         every chair: connection, vitals, NEWS2, alarms, session
    GET  /api/v1/chairs/<chair>                 one chair
    GET  /api/v1/alarms?state=active            open alarms (state=all: history, newest last)
    POST /api/v1/alarms/<id>/acknowledge        {"user": "..."}: the alarm after the action
    POST /api/v1/chairs/<chair>/acknowledge     {"user": "..."}: every alarm of the chair (each audited)
    POST /api/v1/chairs/<chair>/pause-audio     {"user": "...", "duration_s": 120}
    POST /api/v1/chairs/<chair>/sessions        {"patient": "...", "protocol": "..."}: start a session
    GET  /api/v1/sessions/<id>                  the session with its events
    POST /api/v1/sessions/<id>/limits           {"rules": [...], "confirm": false}: session limits
                                                (charge, admin); 400 naming a refused field, 409 with
                                                "confirm": [changes] when a limit is widened past the
                                                profile's default and "confirm" is not true
    POST /api/v1/sessions/<id>/baseline         {"confirm": true} the proposed baseline, or
                                                {"values": {"nibp_sys": 128, ...}} an entered one
    POST /api/v1/sessions/<id>/steps            {"step": "infusion_started", "detail": "250 mL/h"}: the
                                                session workflow (paused, resumed, stopped, rate
                                                change, bolus, note, observation start)
    GET  /api/v1/alarm-events?limit=500         the alarm history: every state change, newest last
    POST /api/v1/sessions/<id>/end              {"patient_left": false}: 409 with "confirm" (the
                                                open alarms it would close) unless patient_left
    POST /api/v1/sessions/<id>/manual-nibp      {"sys": 120, "dia": 80, "map": 93}: a nurse's NIBP
    GET  /api/v1/sessions/<id>/export?format=csv|zip|fhir|hl7|pdf
    GET  /healthz                               ok or degraded (503 when unwell), each adapter's state;
                                                with login on no details (no addresses, paths, ids)
    GET  /api/v1/health                         the detailed health (charge, admin): adapters' settings
                                                and counters, the store's
    GET  /metrics                               Prometheus text format (dashboard.metrics)
    GET  /api/v1/openapi.json                   the OpenAPI 3.0 description of these (dashboard.openapi)
    GET  /api/v1/users                          accounts (charge, admin)
    POST /api/v1/users                          {"username", "role", "password"}: add one (charge, admin;
                                                403 for an admin account made by a charge nurse)
    POST /api/v1/users/<name>/disable           disable an account (charge, admin; 403 for one's own
                                                or, for a charge nurse, an admin's; 409 if disabled)
    POST /api/v1/users/<name>/enable            enable it again (charge, admin)
    POST /api/v1/users/<name>/password          {"password": "..."}: set it; the sessions end (charge, admin)
    POST /api/v1/users/<name>/role              {"role": "nurse|charge|admin"} (charge, admin)
    POST /api/v1/users/<name>/end-sessions      end every login session of the account (charge, admin)
    POST /api/v1/users/<name>/unlock            forget its failed logins, and so a lockout (charge, admin)
    GET  /api/v1/config                         the bay configuration (charge, admin)

With ``[auth] enabled`` (dashboard.auth) every route but /healthz and /metrics needs a
logged-in user (401 otherwise) whose role allows the action (403 otherwise); the user of an
action is the logged-in one. Those two are public and tell no device path, broker address,
client id or user name: /healthz then answers only ``status``, ``store_writable``, each
adapter's name, kind and state, and which sources' links are down (:func:`public_health`).
With authentication off (loopback only) actions name their user in the body:
``{"user": "..."}``.

Errors are JSON ``{"error": "..."}`` with a 4xx status; times are RFC 3339 in UTC.

This module installs the API (login, limits, metrics, the error handlers); the routes live in
dashboard.api_read (reading), dashboard.api_actions (alarm and session actions),
dashboard.api_export, dashboard.api_users (accounts) and dashboard.api_health, their shared
helpers in dashboard.api_support.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard.api_actions import add_action_routes
from dashboard.api_export import add_export_route
from dashboard.api_health import HEALTH_PERMISSION, add_health_routes, public_health
from dashboard.api_read import add_reading_routes
from dashboard.api_support import ApiError, EncodedJson
from dashboard.api_users import add_user_routes
from dashboard.auth import DASH_JSON, install_auth
from dashboard.live import LiveBay
from dashboard.metrics import install_metrics
from dashboard.security import limit_json
from monitor.core import ConfirmationRequired, MonitorError, NotFound

log = logging.getLogger("chairside.api")

#: How long a state-changing request waits for its change to be committed before answering.
DURABLE_WAIT_S = 5.0

# ApiError, EncodedJson, HEALTH_PERMISSION and public_health are re-exported from the modules
# that hold them (dashboard.api_support, dashboard.api_health)
__all__ = ["HEALTH_PERMISSION", "ApiError", "EncodedJson", "install_api", "public_health"]


def install_api(server: Flask, live: LiveBay) -> None:
    install_auth(server, live)
    limit_json(server)
    api = Blueprint("chairside_api", __name__)
    metrics = install_metrics(server, live)
    add_reading_routes(api, live)
    add_action_routes(api, live)
    add_export_route(api, live)
    add_user_routes(api, live)
    add_health_routes(api, live, metrics)

    @api.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Any:
        return jsonify({"error": str(exc)}), exc.status

    @api.errorhandler(NotFound)
    def not_found(exc: NotFound) -> Any:
        return jsonify({"error": str(exc)}), 404

    @api.errorhandler(ConfirmationRequired)
    def confirm(exc: ConfirmationRequired) -> Any:
        return jsonify({"error": str(exc), "confirm": list(exc.items)}), 409

    @api.errorhandler(MonitorError)
    def conflict(exc: MonitorError) -> Any:
        return jsonify({"error": str(exc)}), 409

    @api.after_request
    def durable(response: Response) -> Response:
        """A change (a POST that succeeded) is answered once it is on disk, so that a crash
        or a takeover just after the answer loses nothing the caller was told was done. If
        the store cannot commit in time (its outage is an alarm on every screen), the change
        waits in memory and the answer says so in ``Chairside-Durable: no``."""
        changed = request.method == "POST" and response.status_code < 400
        if changed and not live.monitor.flush(DURABLE_WAIT_S):
            log.warning("%s %s answered before its change was on disk", request.method, request.path)
            response.headers["Chairside-Durable"] = "no"
        return response

    server.register_blueprint(api)

    @server.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if request.path.startswith(("/api/", *DASH_JSON)):  # JSON, even for a wrong URL
            return jsonify({"error": exc.description or exc.name}), exc.code
        return exc

    @server.after_request
    def no_store(response: Response) -> Response:
        if request.path.startswith(("/api/", "/healthz")):
            response.headers["Cache-Control"] = "no-store"
        return response
