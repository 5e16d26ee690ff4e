"""The paths of the OpenAPI description of the HTTP API: every route of :mod:`dashboard.api`,
its parameters, request body and answers (the schemas they refer to:
:mod:`dashboard.openapi_schemas`; the document: :mod:`dashboard.openapi`).
"""

from __future__ import annotations

from typing import Any

from dashboard.openapi_schemas import STR, TIME, TIME_OR_NULL, nullable, obj, ref
from monitor.exports import FORMATS

__all__ = ["PATHS"]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    what = {400: "bad request", 401: "not logged in", 403: "the user's role does not allow this",
            404: "not found", 409: "conflict with the current state",
            413: "request body too large", 503: "the store is not keeping up; try again"}
    return {str(c): _json(ref("Error"), what[c]) for c in codes}


_USER = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S",
         "description": "who does this (audited)"}


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


_CHAIR = _path_param("chair", {"type": "string", "minLength": 1}, "a chair id from the bay configuration")
_SESSION = _path_param("session_id", {"type": "string", "minLength": 1}, "a session id")
_ALARM = _path_param("alarm_id", {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
                     "an alarm id (decimal digits)")


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON request body. ``user`` is never required: with login on the server takes the
    logged-in user and ignores it; with login off (loopback only) the server asks for it."""
    required = [k for k in schema.get("required", []) if k != "user"]
    return {"required": True, "content": {"application/json": {"schema": {**schema, "required": required}}}}


_BINARY = {"type": "string", "format": "binary"}
_EXPORT_SCHEMAS = {"fhir": obj({"resourceType": {"type": "string", "enum": ["Bundle"]},
                                "type": {"type": "string", "enum": ["collection"]},
                                "entry": {"type": "array", "items": {"type": "object"}}},
                               required=["resourceType", "type"])}

PATHS: dict[str, Any] = {
    "/api/v1/chairs": {"get": {
        "operationId": "listChairs",
        "summary": "every chair: connection, vitals, NEWS2, alarms, session",
        "responses": {"200": _json(obj({"time": TIME, "chairs": {"type": "array", "items": ref("Chair")}}),
                                   "the bay")},
    }},
    "/api/v1/chairs/{chair}": {"get": {
        "operationId": "getChair",
        "summary": "one chair",
        "parameters": [_CHAIR],
        "responses": {"200": _json(ref("Chair"), "the chair"), **_errors(404)},
    }},
    "/api/v1/alarms": {"get": {
        "operationId": "listAlarms",
        "summary": "open alarms (state=active), or every alarm as it stands now, cleared ones too, "
                   "oldest first (state=all)",
        "parameters": [
            {"name": "state", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["active", "all"], "default": "active"}},
            {"name": "limit", "in": "query", "required": False, "description": "with state=all",
             "schema": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 500}},
        ],
        "responses": {"200": _json(obj({"alarms": {"type": "array", "items": ref("Alarm")}}),
                                   "the alarms"), **_errors(400, 503)},
    }},
    "/api/v1/alarm-events": {"get": {
        "operationId": "listAlarmEvents",
        "summary": "the alarm history: every state change of every alarm, newest last",
        "parameters": [{"name": "limit", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 500}}],
        "responses": {"200": _json(obj({"events": {"type": "array", "items": ref("AlarmEvent")}}),
                                   "alarm events"), **_errors(400, 503)},
    }},
    "/api/v1/alarms/{alarm_id}/acknowledge": {"post": {
        "operationId": "acknowledgeAlarm",
        "summary": "acknowledge an alarm; the action is audited",
        "parameters": [_ALARM],
        "requestBody": _body(obj({"user": _USER})),
        "responses": {"200": _json(ref("Alarm"), "the alarm after the action"),
                      **_errors(400, 404, 409, 413)},
    }},
    "/api/v1/chairs/{chair}/acknowledge": {"post": {
        "operationId": "acknowledgeChair",
        "summary": "acknowledge every alarm of a chair not yet acknowledged; each is audited",
        "parameters": [_CHAIR],
        "requestBody": _body(obj({"user": _USER})),
        "responses": {"200": _json(obj({"chair": STR, "alarms": {"type": "array", "items": ref("Alarm")}}),
                                   "the alarms after the action"),
                      **_errors(400, 401, 403, 404, 413)},
    }},
    "/api/v1/chairs/{chair}/pause-audio": {"post": {
        "operationId": "pauseAudio",
        "summary": "pause the audio of a chair's alarms; the action is audited",
        "parameters": [_CHAIR],
        "requestBody": _body(obj({
            "user": _USER,
            "duration_s": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 600,
                           "nullable": True, "description": "default: the configured pause"},
        }, required=["user"])),
        "responses": {"200": _json(obj({
            "chair": STR, "paused_until": TIME_OR_NULL, "alarms": {"type": "array", "items": ref("Alarm")},
        }), "the pause and the alarms it paused"), **_errors(400, 404, 409, 413)},
    }},
    "/api/v1/sessions/{session_id}": {"get": {
        "operationId": "getSession",
        "summary": "the session with its events",
        "parameters": [_SESSION],
        "responses": {"200": _json({"allOf": [ref("Session"), obj({
            "events": {"type": "array", "items": ref("SessionEvent")},
            "baseline_proposal": nullable(ref("BaselineProposal")),
        })]}, "the session, and the baseline its pre-infusion readings propose"),
            **_errors(404, 503)},
    }},
    "/api/v1/sessions/{session_id}/baseline": {"post": {
        "operationId": "setSessionBaseline",
        "summary": "confirm the proposed baseline ({confirm: true}) or enter one ({values}); audited",
        "parameters": [_SESSION],
        "requestBody": _body(obj({
            "user": _USER, "confirm": {"type": "boolean"},
            "values": {"type": "object", "additionalProperties": {"type": "number"}}}, required=[])),
        "responses": {"200": _json(ref("Session"), "the session with its baseline"),
                      **_errors(400, 401, 403, 404, 409, 413)},
    }},
    "/api/v1/sessions/{session_id}/steps": {"post": {
        "operationId": "sessionStep",
        "summary": "a step of the session workflow, as the chair page's buttons; audited. Starting the "
                   "infusion without a baseline answers 409 with confirm unless confirm is true",
        "parameters": [_SESSION],
        "requestBody": _body(obj({
            "user": _USER,
            "step": {"type": "string", "enum": ["infusion_started", "infusion_paused", "infusion_resumed",
                                                "infusion_stopped", "rate_changed", "bolus", "note",
                                                "observation_started"]},
            "detail": {"type": "string", "maxLength": 2000,
                       "description": "the rate, bolus or note text (required for those)"},
            "minutes": {"type": "number", "minimum": 0, "maximum": 1440,
                        "description": "observation_started: its length"},
            "confirm": {"type": "boolean"}}, required=["step"])),
        "responses": {"200": _json(ref("Session"), "the session after the step"),
                      "409": _json(ref("Confirm"), "not allowed in the session's state, or a "
                                   "confirmation needed"),
                      **_errors(400, 401, 403, 404, 413)},
    }},
    "/api/v1/sessions/{session_id}/end": {"post": {
        "operationId": "endSession",
        "summary": "end the session; with open alarms only once patient_left confirms the patient "
                   "has left the chair (409 lists them under confirm); audited",
        "parameters": [_SESSION],
        "requestBody": _body(obj({"user": _USER, "patient_left": {"type": "boolean"}}, required=[])),
        "responses": {"200": _json(ref("Session"), "the ended session"),
                      "409": _json(ref("Confirm"), "open alarms: confirm that the patient has left, "
                                   "or the session has ended already"),
                      **_errors(400, 401, 403, 404, 413)},
    }},
    "/api/v1/sessions/{session_id}/export": {"get": {
        "operationId": "exportSession",
        "summary": "the session's record in one of the export formats (partial while it runs)",
        "parameters": [_SESSION, {
            "name": "format", "in": "query", "required": False,
            "schema": {"type": "string", "enum": list(FORMATS), "default": "csv"}}],
        "responses": {"200": {
            "description": "the export, as an attachment",
            "content": {f.mimetype: {"schema": _EXPORT_SCHEMAS.get(f.name, _BINARY)}
                        for f in FORMATS.values()},
        }, **_errors(400, 404, 409, 503)},
    }},
    "/api/v1/chairs/{chair}/sessions": {"post": {
        "operationId": "startSession",
        "summary": "start an infusion session on a chair (nurse and up); audited",
        "parameters": [_CHAIR],
        "requestBody": _body(obj({"user": _USER, "patient": STR, "protocol": STR})),
        "responses": {"201": _json(ref("Session"), "the new session"),
                      **_errors(400, 401, 403, 404, 409, 413)},
    }},
    "/api/v1/sessions/{session_id}/limits": {"post": {
        "operationId": "setSessionLimits",
        "summary": "this session's limit rules (charge nurse, admin); audited with old and new values",
        "parameters": [_SESSION],
        "requestBody": _body(obj({"user": _USER, "rules": {"type": "array", "items": {"type": "object"}},
                                  "confirm": {"type": "boolean", "description": "widen limits past "
                                              "the profile's defaults"}},
                                 required=["rules"])),
        "responses": {"200": _json(ref("Session"), "the session after the change"),
                      **_errors(400, 401, 403, 404, 413),
                      "409": _json(ref("Confirm"), "the session has ended, or the changes (in \"confirm\") "
                                   "widen limits past the profile's defaults: send again with "
                                   "\"confirm\": true")},
    }},
    "/api/v1/sessions/{session_id}/manual-nibp": {"post": {
        "operationId": "enterManualNibp",
        "summary": "a nurse's NIBP reading (manual cuff), taken now, marked MANUAL; audited",
        "parameters": [_SESSION],
        "requestBody": _body(obj({
            "user": _USER,
            "sys": {"type": "number", "minimum": 40, "maximum": 300},
            "dia": {"type": "number", "minimum": 15, "maximum": 200},
            "map": {"type": "number", "minimum": 25, "maximum": 250, "nullable": True,
                    "description": "default: (sys + 2 dia) / 3"},
        }, required=["sys", "dia"])),
        "responses": {"201": _json(obj({
            "session_id": STR, "chair": STR, "time": TIME, "manual": {"type": "boolean"},
            "sys": {"type": "number"}, "dia": {"type": "number"}, "map": {"type": "number"},
        }), "the reading as taken"), **_errors(400, 401, 403, 404, 409, 413)},
    }},
    "/api/v1/users": {
        "get": {
            "operationId": "listUsers",
            "summary": "accounts (charge nurse, admin); 409 when authentication is off",
            "responses": {"200": _json(obj({"users": {"type": "array", "items": obj(
                {"username": STR, "role": STR, "disabled": {"type": "boolean"},
                 "sessions": {"type": "integer", "description": "open login sessions"},
                 "locked_until": nullable(TIME)})}}), "the accounts"),
                **_errors(401, 403, 409)},
        },
        "post": {
            "operationId": "addUser",
            "summary": "add an account (charge nurse, admin); audited",
            "requestBody": _body(obj({"user": _USER, "username": STR, "role": STR, "password": STR},
                                     required=["username", "role", "password"])),
            "responses": {"201": _json(obj({"username": STR, "role": STR,
                                            "disabled": {"type": "boolean"}}), "the account"),
                          **_errors(400, 401, 403, 409, 413)},
        },
    },
    "/api/v1/users/{username}/disable": {"post": {
        "operationId": "disableUser",
        "summary": "disable an account (charge nurse, admin); audited",
        "parameters": [_path_param("username", {"type": "string", "minLength": 1}, "an account name")],
        "requestBody": _body(obj({"user": _USER})),
        "responses": {"200": _json(obj({"username": STR, "role": STR,
                                        "disabled": {"type": "boolean"}}), "the account"),
                      **_errors(400, 401, 403, 404, 409, 413)},
    }},
    **{f"/api/v1/users/{{username}}/{action}": {"post": {
        "operationId": op,
        "summary": f"{summary} (charge nurse, admin); audited",
        "parameters": [_path_param("username", {"type": "string", "minLength": 1}, "an account name")],
        "requestBody": _body(obj({"user": _USER, **fields}, required=list(fields))),
        "responses": {"200": _json(obj({"username": STR, "role": STR, "disabled": {"type": "boolean"},
                                        **answer}), "the account"),
                      **_errors(400, 401, 403, 404, 409, 413)},
    }} for action, op, summary, fields, answer in (
        ("enable", "enableUser", "enable a disabled account", {}, {}),
        ("password", "setUserPassword", "set an account's password (NIST SP 800-63B rules: 8 characters, "
         "12 for an admin, not a common one, not the user name); its login sessions end",
         {"password": STR}, {}),
        ("role", "setUserRole", "change an account's role",
         {"role": {"type": "string", "enum": ["nurse", "charge", "admin"]}}, {}),
        ("end-sessions", "endUserSessions", "end every login session of an account at once", {},
         {"sessions_ended": {"type": "integer"}}),
        ("unlock", "unlockUser", "forget an account's failed logins, ending a lockout", {},
         {"failures_forgotten": {"type": "integer"}}),
    )},
    "/api/v1/config": {"get": {
        "operationId": "getConfig",
        "summary": "the bay configuration (charge nurse, admin)",
        "responses": {"200": _json({"type": "object"}, "the configuration"), **_errors(401, 403)},
    }},
    "/api/v1/openapi.json": {"get": {
        "operationId": "openapi",
        "summary": "this description",
        "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0 description of the API")},
    }},
    "/healthz": {"get": {
        "operationId": "health",
        "summary": "ok or degraded, each adapter's state (public: with login on nothing more; "
                   "without login, on loopback, the detailed body of /api/v1/health)",
        "responses": {"200": _json(ref("PublicHealth"), "well"),
                      "503": _json(ref("PublicHealth"), "the store cannot write, an adapter FAILED, or a "
                                   "source's link is down")},
    }},
    "/api/v1/health": {"get": {
        "operationId": "healthDetail",
        "summary": "the detailed health: adapters' settings and counters, the store's (charge nurse, admin)",
        "responses": {"200": _json(ref("Health"), "well"),
                      "503": _json(ref("Health"), "the store cannot write, an adapter FAILED, or a "
                                   "source's link is down"),
                      **_errors(401, 403)},
    }},
    "/metrics": {"get": {
        "operationId": "metrics",
        "summary": "Prometheus text exposition format",
        "responses": {"200": {"description": "the metrics",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }},
}
