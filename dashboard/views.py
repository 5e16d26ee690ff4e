"""JSON views of the core's state: the shapes of the HTTP API (docs/protocols.md#api),
also used by the dashboard pages. Pure functions; times are RFC 3339 in UTC."""

from __future__ import annotations

from typing import Any

from monitor.core import BaselineProposal, ChairStatus, VitalStatus
from monitor.records import Alarm, AlarmEvent, Session, SessionEvent
from monitor.sessions import observation_remaining
from monitor.timefmt import rfc3339

__all__ = ["alarm_event_json", "alarm_json", "baseline_proposal_json", "chair_json",
           "session_event_json", "session_json", "vital_json"]


def vital_json(v: VitalStatus) -> dict[str, Any]:
    return {"value": v.value, "ts": rfc3339(v.time), "unit": v.parameter.unit,
            "age_s": None if v.age_s is None else round(v.age_s, 1), "stale": v.stale}


def alarm_json(a: Alarm) -> dict[str, Any]:
    return {
        "id": a.id, "chair": a.chair, "kind": a.kind.value, "code": a.code,
        "priority": a.priority.label, "state": a.state.value, "message": a.message,
        "raised_at": rfc3339(a.raised_at), "value": a.value, "limit": a.limit,
        "onset_at": rfc3339(a.onset_at),
        "parameter": a.parameter, "sounding": a.sounding, "updated_at": rfc3339(a.updated_at),
        "paused_until": rfc3339(a.paused_until), "acknowledged_by": a.acknowledged_by,
        "acknowledged_at": rfc3339(a.acknowledged_at), "cleared_at": rfc3339(a.cleared_at),
    }


def alarm_event_json(e: AlarmEvent) -> dict[str, Any]:
    return {"time": rfc3339(e.time), "chair": e.chair, "alarm_id": e.alarm_id,
            "old_state": e.old_state.value if e.old_state else None, "new_state": e.new_state.value,
            "user": e.user, "note": e.note, "alarm": alarm_json(e.alarm)}


def session_json(s: Session | None, now: float | None = None) -> dict[str, Any] | None:
    if s is None:
        return None
    remaining = observation_remaining(s, now) if now is not None else None
    return {
        "id": s.id, "chair": s.chair, "patient": s.patient, "protocol": s.protocol, "drug": s.drug,
        "dose": s.dose, "state": s.state.value, "planned_minutes": s.planned_minutes,
        "nibp_interval_s": s.nibp_interval_s, "observation_minutes": s.observation_minutes,
        "started_at": rfc3339(s.started_at), "started_by": s.started_by,
        "infusion_started_at": rfc3339(s.infusion_started_at),
        "infusion_stopped_at": rfc3339(s.infusion_stopped_at),
        "observation_started_at": rfc3339(s.observation_started_at),
        "observation_remaining_s": None if remaining is None else round(remaining),
        "ended_at": rfc3339(s.ended_at), "ended_by": s.ended_by, "baseline": dict(s.baseline),
        "baseline_source": s.baseline_source, "limit_overrides": [dict(r) for r in s.limit_overrides],
    }


def baseline_proposal_json(p: BaselineProposal | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"values": p.values, "since": rfc3339(p.since), "until": rfc3339(p.until),
            "readings": p.used, "left_out_in_alarm": p.left_out}


def session_event_json(e: SessionEvent) -> dict[str, Any]:
    return {"time": rfc3339(e.time), "kind": e.kind.value, "user": e.user, "detail": e.detail,
            "data": dict(e.data)}


def chair_json(status: ChairStatus, bay: str, now: float) -> dict[str, Any]:
    return {
        "chair": status.chair, "label": status.label, "bay": bay, "connection": status.connection,
        # data arriving late (device times behind the monitor's clock): key -> seconds behind
        "delayed": bool(status.delayed), "delayed_s": {k: round(v, 1) for k, v in status.delayed.items()},
        "last_reading_at": rfc3339(status.last_reading_at),
        "vitals": {key: vital_json(v) for key, v in status.vitals.items()},
        "news2": status.news2.as_dict(),
        "alarms": [alarm_json(a) for a in status.alarms],
        "audio_paused_until": rfc3339(status.paused_until),
        "session": session_json(status.session, now),
    }
