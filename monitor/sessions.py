"""A chair's infusion session as pure transitions: ``(session, step) -> (session, event)``.

States (records.SessionState)::

    MONITORING --infusion_started--> INFUSING <--resumed/paused--> INFUSION_PAUSED
        ^                               |                               |
        +------- infusion_stopped ------+-------------------------------+
    any open state --observation_started--> OBSERVATION --session_ended--> ENDED
    any open state --session_ended--> ENDED

Notes, boluses, rate changes (while infusing), baselines and limit changes are recorded in
any open state they make sense in. The core persists both the new session and the event.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from monitor.config import ProtocolPreset
from monitor.errors import CoreError
from monitor.records import Session, SessionEvent, SessionEventKind, SessionState

__all__ = ["SessionError", "new_session", "observation_remaining", "step"]

K = SessionEventKind
S = SessionState


class SessionError(CoreError):
    """A session step that is not possible now (the message says why)."""


# Which states each step may be taken from, and the state it leads to (None: unchanged).
_STEPS: dict[SessionEventKind, tuple[frozenset[SessionState], SessionState | None]] = {
    K.INFUSION_STARTED: (frozenset({S.MONITORING}), S.INFUSING),
    K.RATE_CHANGED: (frozenset({S.INFUSING, S.INFUSION_PAUSED}), None),
    K.INFUSION_PAUSED: (frozenset({S.INFUSING}), S.INFUSION_PAUSED),
    K.INFUSION_RESUMED: (frozenset({S.INFUSION_PAUSED}), S.INFUSING),
    K.INFUSION_STOPPED: (frozenset({S.INFUSING, S.INFUSION_PAUSED}), S.MONITORING),
    K.BOLUS: (frozenset({S.MONITORING, S.INFUSING, S.INFUSION_PAUSED}), None),
    K.OBSERVATION_STARTED: (frozenset({S.MONITORING, S.INFUSING, S.INFUSION_PAUSED}),
                            S.OBSERVATION),
    K.NOTE: (frozenset(s for s in S if s.is_open), None),
    K.BASELINE_SET: (frozenset(s for s in S if s.is_open), None),
    K.LIMITS_CHANGED: (frozenset(s for s in S if s.is_open), None),
    K.SESSION_ENDED: (frozenset(s for s in S if s.is_open), S.ENDED),
}


def new_session(
    *, chair: str, patient: str, user: str, now: float, preset_key: str = "",
    preset: ProtocolPreset | None = None, drug: str | None = None, dose: str | None = None,
    session_id: str | None = None,
) -> tuple[Session, SessionEvent]:
    patient = patient.strip()
    if not patient:
        raise SessionError("a session needs a patient label or MRN")
    if len(patient) > 64:
        raise SessionError("the patient label is longer than 64 characters")
    if preset_key and preset is None:
        raise SessionError(f"unknown protocol preset {preset_key!r}")
    session = Session(
        id=session_id or uuid.uuid4().hex[:16], chair=chair, patient=patient,
        protocol=preset_key, drug=drug if drug is not None else (preset.drug if preset else ""),
        dose=dose if dose is not None else (preset.dose if preset else ""),
        planned_minutes=preset.planned_minutes if preset else None,
        nibp_interval_s=preset.nibp_interval_min * 60 if preset and preset.nibp_interval_min else None,
        observation_minutes=preset.observation_minutes if preset else None,
        state=S.MONITORING, started_at=now, started_by=user, updated_at=now,
    )
    detail = f"{patient}, {preset.label if preset else 'no protocol'}"
    return session, SessionEvent(session.id, chair, now, K.SESSION_STARTED, user, detail,
                                 {"protocol": preset_key, "drug": session.drug, "dose": session.dose})


def step(
    session: Session, kind: SessionEventKind, *, user: str, now: float, detail: str = "",
    data: dict[str, Any] | None = None,
) -> tuple[Session, SessionEvent]:
    if kind is K.SESSION_STARTED:
        raise SessionError("use new_session to start a session")
    allowed, target = _STEPS[kind]
    if session.state not in allowed:
        if not session.state.is_open:
            raise SessionError(f"session {session.id} has ended")
        raise SessionError(
            f"cannot record {kind.value.replace('_', ' ')} while the session is "
            f"{session.state.value.replace('_', ' ')}"
        )
    data = dict(data or {})
    changes: dict[str, Any] = {"updated_at": now}
    if target is not None:
        changes["state"] = target
    if kind is K.INFUSION_STARTED:
        changes["infusion_started_at"] = now
    elif kind is K.INFUSION_STOPPED or (
        kind is K.OBSERVATION_STARTED and session.state in (S.INFUSING, S.INFUSION_PAUSED)
    ):
        changes["infusion_stopped_at"] = now
    if kind is K.OBSERVATION_STARTED:
        changes["observation_started_at"] = now
        if "minutes" in data:
            changes["observation_minutes"] = float(data["minutes"])
    elif kind is K.SESSION_ENDED:
        changes.update(ended_at=now, ended_by=user)
    elif kind is K.BASELINE_SET:
        changes.update(baseline=dict(data["baseline"]), baseline_source=data.get("source", "entered"))
    elif kind is K.LIMITS_CHANGED:
        changes["limit_overrides"] = tuple(data["rules"])
    if kind in (K.NOTE, K.RATE_CHANGED, K.BOLUS) and not detail.strip():
        raise SessionError(f"{kind.value.replace('_', ' ')} needs a text")
    if len(detail) > 2000:
        raise SessionError("the text is longer than 2000 characters")
    return replace(session, **changes), SessionEvent(session.id, session.chair, now, kind, user,
                                                     detail.strip(), data)


def observation_remaining(session: Session, now: float) -> float | None:
    """Seconds left of the post-infusion observation (negative when overrun)."""
    if session.observation_started_at is None or session.observation_minutes is None:
        return None
    return session.observation_started_at + session.observation_minutes * 60 - now
