"""The action routes of the HTTP API (:mod:`dashboard.api`): acknowledging alarms, pausing a
chair's audio, and a session's workflow (start, limits, baseline, steps, manual NIBP, end).
Each names its user (:func:`dashboard.api_support.acting_user`) and refreshes the screens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from dashboard.api_support import ApiError, acting_user, flag, request_body
from dashboard.live import LiveBay
from dashboard.views import alarm_json, session_json
from monitor.core import ConfirmationRequired
from monitor.records import Session
from monitor.records import SessionEventKind as K
from monitor.timefmt import rfc3339

__all__ = ["add_action_routes"]

#: The workflow steps of POST /api/v1/sessions/<id>/steps.
_WORKFLOW = {k.value: k for k in (K.INFUSION_STARTED, K.INFUSION_PAUSED, K.INFUSION_RESUMED,
                                  K.INFUSION_STOPPED, K.RATE_CHANGED, K.BOLUS, K.NOTE,
                                  K.OBSERVATION_STARTED)}


def add_action_routes(api: Blueprint, live: LiveBay) -> None:
    monitor = live.monitor

    def _changed(s: Session) -> Any:
        """A session after an action: the screens see it at once, the caller gets it."""
        live.invalidate()
        return jsonify(session_json(s, monitor.clock.now()))

    @api.post("/api/v1/alarms/<alarm_id>/acknowledge")
    def acknowledge(alarm_id: str) -> Any:
        if not (alarm_id.isascii() and alarm_id.isdigit()) or len(alarm_id) > 18:  # not "²": int() refuses it
            raise ApiError(404, f"no alarm with id {alarm_id!r}")
        alarm = monitor.acknowledge(int(alarm_id), acting_user(request_body(), "acknowledge"))
        live.invalidate()
        return jsonify(alarm_json(alarm))

    @api.post("/api/v1/chairs/<chair>/acknowledge")
    def acknowledge_chair(chair: str) -> Any:
        user = acting_user(request_body(), "acknowledge")
        done = monitor.acknowledge_chair(chair, user)
        live.invalidate()
        return jsonify({"chair": chair, "alarms": [alarm_json(a) for a in done]})

    @api.post("/api/v1/chairs/<chair>/pause-audio")
    def pause_audio(chair: str) -> Any:
        body = request_body()
        user = acting_user(body, "pause")
        duration = body.get("duration_s")
        if duration is not None and (not isinstance(duration, int | float) or isinstance(duration, bool)
                                     or not 0 < duration <= 600):
            raise ApiError(400, "duration_s must be a number of seconds, more than 0 and at most 600")
        paused = monitor.pause_audio(chair, user, duration)
        live.invalidate()
        return jsonify({"chair": chair, "paused_until": rfc3339(monitor.paused_until(chair)),
                        "alarms": [alarm_json(a) for a in paused]})

    @api.post("/api/v1/chairs/<chair>/sessions")
    def start_session(chair: str) -> Any:
        body = request_body()
        user = acting_user(body, "sessions")
        patient, protocol = body.get("patient", ""), body.get("protocol", "")
        if not isinstance(patient, str) or not isinstance(protocol, str):
            raise ApiError(400, "patient and protocol must be strings")
        s = monitor.start_session(chair, patient, user, protocol=protocol)
        live.invalidate()
        return jsonify(session_json(s, monitor.clock.now())), 201

    @api.post("/api/v1/sessions/<session_id>/limits")
    def set_limits(session_id: str) -> Any:
        body = request_body()
        user = acting_user(body, "limits")
        rules = body.get("rules")
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ApiError(400, "rules must be a list of limit rule objects")
        confirm = flag(body, "confirm")
        try:  # a widening unconfirmed: 409 with "confirm": [changes] (ConfirmationRequired)
            s = monitor.set_limits(session_id, rules, user, confirm=confirm)
        except ValueError as exc:  # InvalidLimits: "rules[1].low: not a finite number (nan)"
            raise ApiError(400, str(exc)) from None
        return _changed(s)

    @api.post("/api/v1/sessions/<session_id>/baseline")
    def set_baseline(session_id: str) -> Any:
        body = request_body()
        user = acting_user(body, "sessions")
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
        body = request_body()
        user = acting_user(body, "sessions")
        step, detail = body.get("step"), body.get("detail", "")
        kind = _WORKFLOW.get(step) if isinstance(step, str) else None
        if kind is None:
            raise ApiError(400, f"step must be one of {', '.join(_WORKFLOW)} (baseline, limits, manual "
                                "NIBP and the end of the session have their own routes)")
        if not isinstance(detail, str) or len(detail) > 2000:
            raise ApiError(400, "detail must be a text of at most 2000 characters")
        confirm = flag(body, "confirm")
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
        body = request_body()
        user = acting_user(body, "sessions")
        left = flag(body, "patient_left")
        s = monitor.end_session(session_id, user, patient_left=left)
        return _changed(s)

    @api.post("/api/v1/sessions/<session_id>/manual-nibp")
    def manual_nibp(session_id: str) -> Any:
        body = request_body()
        user = acting_user(body, "sessions")
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
