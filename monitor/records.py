"""The records the core produces and the store keeps: alarms, alarm events, sessions,
session events and operator actions.

All are frozen dataclasses; a change is a new record, never an edit, so an event log
can be replayed and audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

__all__ = [
    "RECEIPTS_KEPT_S",
    "Alarm",
    "AlarmEvent",
    "AlarmKind",
    "AlarmState",
    "MessageReceipt",
    "OperatorAction",
    "Priority",
    "Session",
    "SessionEvent",
    "SessionEventKind",
    "SessionState",
]


class Priority(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def marker(self) -> str:
        """IEC 60601-1-8 message prefix: *** high, ** medium, * low."""
        return "*" * int(self)

    @classmethod
    def parse(cls, text: str) -> Priority:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"priority must be high, medium or low, not {text!r}") from None


class AlarmKind(StrEnum):
    PHYSIOLOGICAL = "physiological"
    TECHNICAL = "technical"


class AlarmState(StrEnum):
    ACTIVE = "active"  # condition present, sounding
    ACKNOWLEDGED = "acknowledged"  # seen by an operator; shown while the condition lasts
    PAUSED = "paused"  # audio paused until paused_until; shown
    LATCHED = "latched"  # condition gone, kept on screen until acknowledged (high priority)
    CLEARED = "cleared"  # over; history only

    @property
    def is_open(self) -> bool:
        return self is not AlarmState.CLEARED


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm occurrence, as it stands after its latest change."""

    id: int
    chair: str
    code: str  # SPO2_LOW, HR_HIGH, NIBP_SYS_BELOW_BASELINE, NO_DATA, SENSOR_OFF, ...
    rule: str  # id of the rule that raised it, unique within a chair's rule set
    kind: AlarmKind
    priority: Priority
    state: AlarmState
    message: str  # "SpO2 86 < 90"
    raised_at: float
    updated_at: float
    parameter: str | None = None
    value: float | None = None  # the value that raised it (latest while active)
    limit: float | None = None
    paused_until: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    cleared_at: float | None = None
    # when the condition began: the device time of the first breaching reading (at most the
    # monitor's time then); ``raised_at`` is when it was annunciated, after its delay
    onset_at: float | None = None

    @property
    def sounding(self) -> bool:
        return self.state is AlarmState.ACTIVE


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """A state change of one alarm. ``old_state`` is None when the alarm is raised."""

    time: float
    chair: str
    alarm_id: int
    old_state: AlarmState | None
    new_state: AlarmState
    alarm: Alarm  # the alarm after the change
    user: str | None = None  # set for operator actions
    note: str = ""  # why: "raised", "pause expired", "condition cleared", ...


class SessionState(StrEnum):
    MONITORING = "monitoring"  # started, infusion not yet running
    INFUSING = "infusing"
    INFUSION_PAUSED = "infusion_paused"
    OBSERVATION = "observation"  # infusion over, post-infusion observation
    ENDED = "ended"

    @property
    def is_open(self) -> bool:
        return self is not SessionState.ENDED


class SessionEventKind(StrEnum):
    SESSION_STARTED = "session_started"
    INFUSION_STARTED = "infusion_started"
    RATE_CHANGED = "rate_changed"
    INFUSION_PAUSED = "infusion_paused"
    INFUSION_RESUMED = "infusion_resumed"
    INFUSION_STOPPED = "infusion_stopped"
    BOLUS = "bolus"
    NOTE = "note"
    BASELINE_SET = "baseline_set"
    LIMITS_CHANGED = "limits_changed"
    OBSERVATION_STARTED = "observation_started"
    SESSION_ENDED = "session_ended"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    chair: str
    patient: str  # label or MRN as the nurse entered it
    protocol: str  # preset key, or "" for none
    drug: str
    dose: str
    planned_minutes: float | None
    nibp_interval_s: float | None  # None: no NIBP-overdue alarm
    observation_minutes: float | None
    state: SessionState
    started_at: float
    started_by: str
    infusion_started_at: float | None = None
    infusion_stopped_at: float | None = None
    observation_started_at: float | None = None
    ended_at: float | None = None
    ended_by: str | None = None
    baseline: dict[str, float] = field(default_factory=dict)  # parameter key -> value
    # "confirmed" (a proposal from pre-infusion readings not in alarm, confirmed by a nurse),
    # "entered" by a nurse, or "captured" (sessions recorded before baselines were confirmed)
    baseline_source: str | None = None
    limit_overrides: tuple[dict[str, Any], ...] = ()  # rule dicts as in the config schema
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class SessionEvent:
    session_id: str
    chair: str
    time: float
    kind: SessionEventKind
    user: str
    detail: str = ""  # free text shown in the record ("rate 250 mL/h")
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """Who did what, when: every acknowledge, pause, limit change, session step."""

    time: float
    user: str
    action: str  # "acknowledge", "pause_audio", "set_limits", "start_session", ...
    chair: str | None = None
    target: str | None = None  # alarm id or session id
    detail: dict[str, Any] = field(default_factory=dict)


#: How long the store keeps a :class:`MessageReceipt`: a message is sent again within
#: seconds of its lost ACK; an hour covers a long takeover with room to spare.
RECEIPTS_KEPT_S = 3600.0


@dataclass(frozen=True, slots=True)
class MessageReceipt:
    """A message a source took (its readings stored in the same transaction): ``key``
    identifies it (an HL7 message: :func:`wire.hl7.v2.message_key`), so that the same
    message sent again (its ACK lost in a crash or a takeover) is recognised, answered and
    not stored twice. Kept ``RECEIPTS_KEPT_S`` (the store prunes older ones)."""

    time: float
    source: str
    key: str
