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
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard.auth import CLOCK_KEY, DASH_JSON, auth_enabled, install_auth, require
from dashboard.errors import DashboardError
from dashboard.live import LiveBay
from dashboard.metrics import install_metrics
from dashboard.openapi import openapi_spec
from dashboard.security import limit_json
from dashboard.views import (
    alarm_event_json,
    alarm_json,
    baseline_proposal_json,
    chair_json,
    session_event_json,
    session_json,
)
from monitor.core import ConfirmationRequired, MonitorError, NotFound
from monitor.exports import FORMATS, export_filename, export_session
from monitor.exports.csv_export import CSV_COLUMNS, csv_chunks, csv_rows
from monitor.records import Session
from monitor.records import SessionEventKind as K
from monitor.seam import SourceState
from monitor.timefmt import rfc3339
from monitor.user_admin import NotPermitted, UserAdmin
from monitor.users import UserError, UserStore

__all__ = ["HEALTH_PERMISSION", "ApiError", "EncodedJson", "install_api", "public_health"]

MAX_BODY = 16 * 1024
HEALTH_PERMISSION = "config"  # the detailed health tells what the configuration does: same readers
LINK_DOWN = "link down (details: GET /api/v1/health)"


class ApiError(DashboardError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _user(body: dict[str, Any], permission: str) -> str:
    name = require(permission)
    if name is not None:
        return name
    user = body.get("user")
    if not isinstance(user, str) or not user.strip() or len(user) > 64:
        raise ApiError(400, "the body needs \"user\": who does this (1-64 characters)")
    return user.strip()


def _body() -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "send a JSON object (Content-Type: application/json)")
    return body


def public_health(body: dict[str, Any]) -> dict[str, Any]:
    """What /healthz tells anyone when login is on: ``status``, ``store_writable``, each
    adapter's name, kind and state (site-chosen names, not addresses), and which sources'
    links are down; never a device path, broker address, client id, user name or counter."""
    return {
        "status": body["status"], "store_writable": body["store_writable"],
        "adapters": [{key: a.get(key) for key in ("name", "kind", "state")} for a in body["adapters"]],
        "source_problems": dict.fromkeys(body["source_problems"], LINK_DOWN),
    }


def install_api(server: Flask, live: LiveBay) -> None:
    install_auth(server, live)
    limit_json(server)
    api = Blueprint("chairside_api", __name__)
    monitor = live.monitor
    metrics = install_metrics(server, live)

    def _changed(s: Session) -> Any:
        """A session after an action: the screens see it at once, the caller gets it."""
        live.invalidate()
        return jsonify(session_json(s, monitor.clock.now()))

    bay_json, alarms_json = EncodedJson(), EncodedJson()

    @api.get("/api/v1/chairs")
    def chairs() -> Any:
        require("view")
        snap = live.snapshot()  # encoded once per snapshot, however many clients ask
        bay = live.config.bay.id
        return bay_json.response(snap, lambda: {
            "time": rfc3339(snap.time), "chairs": [chair_json(c, bay, snap.time) for c in snap.chairs]})

    @api.get("/api/v1/chairs/<chair>")
    def chair(chair: str) -> Any:
        require("view")
        snap = live.snapshot()
        status = snap.chair(chair)
        if status is None:
            raise ApiError(404, f"no chair {chair!r}")
        return jsonify(chair_json(status, live.config.bay.id, snap.time))

    @api.get("/api/v1/alarms")
    def alarms() -> Any:
        require("view")
        state = request.args.get("state", "active")
        if state == "active":  # encoded again only when an open alarm changed
            found = tuple(monitor.open_alarms())
            return alarms_json.response(found, lambda: {"alarms": [alarm_json(a) for a in found]}, equal=True)
        if state == "all":  # the same shape: each alarm as it stands now, cleared ones too
            limit = _int_arg("limit", 500, 1, 10_000)
            found = monitor.alarm_history(limit)
            return jsonify({"alarms": [alarm_json(a) for a in found]})
        raise ApiError(400, f"state must be 'active' or 'all', not {state!r}")

    @api.get("/api/v1/alarm-events")
    def alarm_events() -> Any:
        require("view")
        limit = _int_arg("limit", 500, 1, 10_000)
        events = monitor.alarm_events(limit=limit)
        return jsonify({"events": [alarm_event_json(e) for e in events]})

    @api.post("/api/v1/alarms/<alarm_id>/acknowledge")
    def acknowledge(alarm_id: str) -> Any:
        if not (alarm_id.isascii() and alarm_id.isdigit()) or len(alarm_id) > 18:  # not "²": int() refuses it
            raise ApiError(404, f"no alarm with id {alarm_id!r}")
        alarm = monitor.acknowledge(int(alarm_id), _user(_body(), "acknowledge"))
        live.invalidate()
        return jsonify(alarm_json(alarm))

    @api.post("/api/v1/chairs/<chair>/acknowledge")
    def acknowledge_chair(chair: str) -> Any:
        user = _user(_body(), "acknowledge")
        done = monitor.acknowledge_chair(chair, user)
        live.invalidate()
        return jsonify({"chair": chair, "alarms": [alarm_json(a) for a in done]})

    @api.post("/api/v1/chairs/<chair>/pause-audio")
    def pause_audio(chair: str) -> Any:
        body = _body()
        user = _user(body, "pause")
        duration = body.get("duration_s")
        if duration is not None and (not isinstance(duration, int | float) or isinstance(duration, bool)
                                     or not 0 < duration <= 600):
            raise ApiError(400, "duration_s must be a number of seconds, more than 0 and at most 600")
        paused = monitor.pause_audio(chair, user, duration)
        live.invalidate()
        return jsonify({"chair": chair, "paused_until": rfc3339(monitor.paused_until(chair)),
                        "alarms": [alarm_json(a) for a in paused]})

    @api.get("/api/v1/sessions/<session_id>")
    def session(session_id: str) -> Any:
        require("view")
        s = monitor.session(session_id)
        events = monitor.session_events(s.id)
        return jsonify(session_json(s, monitor.clock.now()) | {
            "events": [session_event_json(e) for e in events],
            "baseline_proposal": baseline_proposal_json(
                monitor.baseline_proposal(s.chair) if s.state.is_open else None)})

    @api.get("/api/v1/sessions/<session_id>/export")
    def export(session_id: str) -> Any:
        user = require("export")
        fmt = request.args.get("format", "csv")
        spec = FORMATS.get(fmt)
        if spec is None:
            raise ApiError(400, f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        s = monitor.session(session_id)
        store = monitor.history()  # 409 without a store (NoHistory)
        now = monitor.clock.now()
        if user is not None:  # patient data leaving the system: recorded
            monitor.audit(user, "export", s.chair, s.id, {"format": fmt})
        headers = {"Content-Disposition": f'attachment; filename="{export_filename(s, fmt)}"',
                   "Cache-Control": "no-store"}
        if fmt == "csv":  # streamed row batch by row batch as the store yields them
            end = s.ended_at if s.ended_at is not None else now
            return Response(csv_chunks(csv_rows(store, s, end), CSV_COLUMNS, neutralised=True),
                            mimetype=spec.mimetype, headers=headers)
        # the other formats are written whole first (to memory, or to a temporary file past
        # 8 MiB), so that a failure is an error status rather than a truncated download
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 (closed by _file_chunks)
        try:
            export_session(store, s, fmt, spool, now, config=live.config)  # type: ignore[arg-type]
            headers["Content-Length"] = str(spool.tell())
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return Response(_file_chunks(spool), mimetype=spec.mimetype, headers=headers)

    @api.get("/api/v1/openapi.json")
    def openapi() -> Any:
        return jsonify(openapi_spec())

    @api.post("/api/v1/chairs/<chair>/sessions")
    def start_session(chair: str) -> Any:
        body = _body()
        user = _user(body, "sessions")
        patient, protocol = body.get("patient", ""), body.get("protocol", "")
        if not isinstance(patient, str) or not isinstance(protocol, str):
            raise ApiError(400, "patient and protocol must be strings")
        s = monitor.start_session(chair, patient, user, protocol=protocol)
        live.invalidate()
        return jsonify(session_json(s, monitor.clock.now())), 201

    @api.post("/api/v1/sessions/<session_id>/limits")
    def set_limits(session_id: str) -> Any:
        body = _body()
        user = _user(body, "limits")
        rules = body.get("rules")
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ApiError(400, "rules must be a list of limit rule objects")
        confirm = _flag(body, "confirm")
        try:  # a widening unconfirmed: 409 with "confirm": [changes] (ConfirmationRequired)
            s = monitor.set_limits(session_id, rules, user, confirm=confirm)
        except ValueError as exc:  # InvalidLimits: "rules[1].low: not a finite number (nan)"
            raise ApiError(400, str(exc)) from None
        return _changed(s)

    @api.post("/api/v1/sessions/<session_id>/baseline")
    def set_baseline(session_id: str) -> Any:
        body = _body()
        user = _user(body, "sessions")
        values = body.get("values")
        if body.get("confirm") is True and values is None:
            s = monitor.confirm_baseline(session_id, user)
        elif isinstance(values, dict) and values and "confirm" not in body:
            s = monitor.set_baseline(session_id, values, user)
        else:
            raise ApiError(400, 'send {"confirm": true} to take the proposed baseline, or '
                                '{"values": {"nibp_sys": 128, ...}} to enter one')
        return _changed(s)

    @api.post("/api/v1/sessions/<session_id>/steps")
    def session_step(session_id: str) -> Any:
        """The session workflow as the chair page's buttons: infusion started, paused,
        resumed, stopped, a rate change, a bolus, a note, the observation's start. Starting
        the infusion without a baseline asks first (409 with "confirm"), as the screen does."""
        body = _body()
        user = _user(body, "sessions")
        step, detail = body.get("step"), body.get("detail", "")
        kind = _WORKFLOW.get(step) if isinstance(step, str) else None
        if kind is None:
            raise ApiError(400, f"step must be one of {', '.join(_WORKFLOW)} (baseline, limits, manual "
                                "NIBP and the end of the session have their own routes)")
        if not isinstance(detail, str) or len(detail) > 2000:
            raise ApiError(400, "detail must be a text of at most 2000 characters")
        confirm = _flag(body, "confirm")
        s = monitor.session(session_id)
        if kind is K.INFUSION_STARTED and not s.baseline and not confirm and s.state.is_open:
            proposal = monitor.baseline_proposal(s.chair)
            raise ConfirmationRequired(
                "no baseline confirmed: baseline-relative alarms stay off until one is. Confirm "
                "the proposed baseline (POST .../baseline {\"confirm\": true}) or send \"confirm\": true "
                "to start without one", [f"proposed baseline: {proposal.values}"] if proposal else [])
        data = None
        if kind is K.OBSERVATION_STARTED and "minutes" in body:
            minutes = body["minutes"]
            if isinstance(minutes, bool) or not isinstance(minutes, int | float) \
                    or not 0 <= minutes <= 24 * 60:
                raise ApiError(400, "minutes must be a number from 0 to 1440")
            data = {"minutes": minutes}
        s = monitor.session_step(session_id, kind, user, detail, data)
        return _changed(s)

    @api.post("/api/v1/sessions/<session_id>/end")
    def end_session(session_id: str) -> Any:
        body = _body()
        user = _user(body, "sessions")
        left = _flag(body, "patient_left")
        s = monitor.end_session(session_id, user, patient_left=left)
        return _changed(s)

    @api.post("/api/v1/sessions/<session_id>/manual-nibp")
    def manual_nibp(session_id: str) -> Any:
        body = _body()
        user = _user(body, "sessions")
        values = []
        for key in ("sys", "dia", "map"):
            value = body.get(key)
            if (value is None and key == "map") or (
                    isinstance(value, int | float) and not isinstance(value, bool)):
                values.append(value)
                continue
            raise ApiError(400, f"{key} must be a number of mmHg" + (" (or null)" if key == "map" else ""))
        try:
            readings = monitor.enter_manual_nibp(session_id, values[0], values[1], values[2], user)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        live.invalidate()
        taken = {key: r.value for key, r in zip(("sys", "dia", "map"), readings, strict=True)}
        return jsonify({"session_id": session_id, "chair": readings[0].chair,
                        "time": rfc3339(readings[0].device_time), "manual": True, **taken}), 201

    def _accounts() -> UserStore:
        if not live.config.auth.enabled:
            raise ApiError(409, "authentication is off in this bay's configuration")
        return UserStore(live.config.store.path, live.config.store.key_file)

    def _admin() -> UserAdmin:
        return UserAdmin(_accounts(), monitor.audit, remote=request.remote_addr or "")

    def _now() -> float:
        return float(current_app.config[CLOCK_KEY]())

    @api.get("/api/v1/users")
    def users() -> Any:
        require("users")
        accounts = _accounts()
        now = _now()
        locked = accounts.locked_until(now)
        open_ = [s.username for s in accounts.sessions.open_sessions(now=now)]
        return jsonify({"users": [{
            "username": u.username, "role": u.role, "disabled": u.disabled,
            "sessions": open_.count(u.username),
            "locked_until": rfc3339(locked[u.username]) if u.username in locked else None,
        } for u in accounts.list()]})

    @api.post("/api/v1/users")
    def add_user() -> Any:
        body = _body()
        by = _user(body, "users")
        name, role, password = body.get("username"), body.get("role"), body.get("password")
        if not all(isinstance(v, str) for v in (name, role, password)):
            raise ApiError(400, "the body needs \"username\", \"role\" and \"password\" strings")
        try:  # checked (a charge nurse makes no admin) and audited by UserAdmin
            u = _admin().add(by, name, role, password)
        except NotPermitted as exc:
            raise ApiError(403, str(exc)) from None
        except UserError as exc:
            raise ApiError(400, str(exc)) from None
        return jsonify({"username": u.username, "role": u.role, "disabled": u.disabled}), 201

    def _manage(username: str, change: Any, key: str | None = None) -> Any:
        """An account change through UserAdmin (the same rules and audit as the /users
        page): 403 where a rule refuses, 404 for no such account, 409 when it is so already,
        400 for a bad role or password. ``key``: the change also returns a count, answered
        under it."""
        try:
            done = change(_admin())
        except NotPermitted as exc:
            raise ApiError(403, str(exc)) from None
        except UserError as exc:  # no such account; already so (409); a bad role or password
            status = 404 if _accounts().get(username) is None else 409 if "already" in str(exc) else 400
            raise ApiError(status, str(exc)) from None
        u, extra = (done[0], {key: done[1]}) if key else (done, {})
        return jsonify({"username": u.username, "role": u.role, "disabled": u.disabled, **extra})

    def _string(body: dict[str, Any], key: str, what: str) -> str:
        value = body.get(key)
        if not isinstance(value, str):
            raise ApiError(400, f"the body needs \"{key}\": {what}")
        return value

    @api.post("/api/v1/users/<username>/disable")
    def disable_user(username: str) -> Any:
        by = _user(_body(), "users")
        return _manage(username, lambda admin: admin.set_disabled(by, username, True))

    @api.post("/api/v1/users/<username>/enable")
    def enable_user(username: str) -> Any:
        by = _user(_body(), "users")
        return _manage(username, lambda admin: admin.set_disabled(by, username, False))

    @api.post("/api/v1/users/<username>/password")
    def set_user_password(username: str) -> Any:  # the account's sessions end
        body = _body()
        by = _user(body, "users")
        password = _string(body, "password", "the new password (a string)")
        return _manage(username, lambda admin: admin.set_password(by, username, password))

    @api.post("/api/v1/users/<username>/role")
    def set_user_role(username: str) -> Any:
        body = _body()
        by = _user(body, "users")
        role = _string(body, "role", "nurse, charge or admin")
        return _manage(username, lambda admin: admin.set_role(by, username, role))

    @api.post("/api/v1/users/<username>/end-sessions")
    def end_user_sessions(username: str) -> Any:
        by = _user(_body(), "users")
        return _manage(username, lambda admin: admin.end_sessions(by, username), "sessions_ended")

    @api.post("/api/v1/users/<username>/unlock")
    def unlock_user(username: str) -> Any:
        by = _user(_body(), "users")
        return _manage(username, lambda admin: admin.unlock(by, username), "failures_forgotten")

    @api.get("/api/v1/config")
    def config() -> Any:
        require("config")
        return jsonify(live.config.model_dump(mode="json"))

    def health_body() -> tuple[dict[str, Any], int]:
        body = live.health()
        stats = body.get("store")
        body["store_writable"] = stats is None or (
            metrics.store_check.writable(stats) and not stats.get("failing"))
        failed = any(a.get("state") == SourceState.FAILED.value for a in body["adapters"]) \
            or bool(body["source_problems"])
        if body["store_writable"] and not failed:
            return body, 200
        body["status"] = "degraded"
        return body, 503

    @api.get("/healthz")
    def healthz() -> Any:
        """200 when well; 503 when the store cannot write, an adapter FAILED or a source's
        link is down, for a load balancer or monitoring system. Public: with login on, no
        details (:func:`public_health`); without login (loopback only) the detailed body."""
        body, status = health_body()
        return jsonify(public_health(body) if auth_enabled() else body), status

    @api.get("/api/v1/health")
    def health() -> Any:
        """The detailed health: adapters' settings (ports, broker, client id) and counters,
        the store's statistics (who may read the configuration may read this)."""
        require(HEALTH_PERMISSION)
        body, status = health_body()
        return jsonify(body), status

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


class EncodedJson:
    """The JSON bytes of a view, kept with the value they were made from (its ``key``) and
    reused while the key stays the same: the snapshot itself (``equal=False``: the same
    object), or a value compared with ``==`` (the open alarms). Threads may race to encode
    the same key; each gets correct bytes and the last one is kept."""

    def __init__(self) -> None:
        self._last: tuple[Any, bytes] | None = None
        self.encoded = 0  # how often it encoded (the rest reused the bytes)

    def get(self, key: Any, build: Callable[[], Any], *, equal: bool = False) -> bytes:
        last = self._last
        if last is not None and (last[0] is key or (equal and last[0] == key)):
            return last[1]
        data = (current_app.json.dumps(build()) + "\n").encode("utf-8")
        self._last = (key, data)
        self.encoded += 1
        return data

    def response(self, key: Any, build: Callable[[], Any], *, equal: bool = False) -> Response:
        return Response(self.get(key, build, equal=equal), mimetype="application/json")


#: The workflow steps of POST /api/v1/sessions/<id>/steps.
_WORKFLOW = {k.value: k for k in (K.INFUSION_STARTED, K.INFUSION_PAUSED, K.INFUSION_RESUMED,
                                  K.INFUSION_STOPPED, K.RATE_CHANGED, K.BOLUS, K.NOTE,
                                  K.OBSERVATION_STARTED)}


def _flag(body: dict[str, Any], key: str) -> bool:
    """A true/false field of a request body (absent: false)."""
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(400, f"{key} must be true or false")
    return value


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:  # not "²": int() refuses it
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _file_chunks(fh: IO[bytes], size: int = 1 << 18) -> Iterator[bytes]:
    try:
        while chunk := fh.read(size):
            yield chunk
    finally:
        fh.close()
