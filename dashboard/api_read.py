"""The reading routes of the HTTP API (:mod:`dashboard.api`): the chairs, the alarms and
their history, a session with its events, the OpenAPI description and the configuration."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from dashboard.api_support import ApiError, EncodedJson, int_arg
from dashboard.auth import require
from dashboard.live import LiveBay
from dashboard.openapi import openapi_spec
from dashboard.views import (
    alarm_event_json,
    alarm_json,
    baseline_proposal_json,
    chair_json,
    session_event_json,
    session_json,
)
from monitor.timefmt import rfc3339

__all__ = ["add_reading_routes"]


def add_reading_routes(api: Blueprint, live: LiveBay) -> None:
    monitor = live.monitor
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
            limit = int_arg("limit", 500, 1, 10_000)
            found = monitor.alarm_history(limit)
            return jsonify({"alarms": [alarm_json(a) for a in found]})
        raise ApiError(400, f"state must be 'active' or 'all', not {state!r}")

    @api.get("/api/v1/alarm-events")
    def alarm_events() -> Any:
        require("view")
        limit = int_arg("limit", 500, 1, 10_000)
        events = monitor.alarm_events(limit=limit)
        return jsonify({"events": [alarm_event_json(e) for e in events]})

    @api.get("/api/v1/sessions/<session_id>")
    def session(session_id: str) -> Any:
        require("view")
        s = monitor.session(session_id)
        events = monitor.session_events(s.id)
        return jsonify(session_json(s, monitor.clock.now()) | {
            "events": [session_event_json(e) for e in events],
            "baseline_proposal": baseline_proposal_json(
                monitor.baseline_proposal(s.chair) if s.state.is_open else None)})

    @api.get("/api/v1/openapi.json")
    def openapi() -> Any:
        return jsonify(openapi_spec())

    @api.get("/api/v1/config")
    def config() -> Any:
        require("config")
        return jsonify(live.config.model_dump(mode="json"))
