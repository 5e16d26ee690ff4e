"""What the core hands out and what it raises: :class:`ChairStatus`
(with :class:`VitalStatus`), :class:`BaselineProposal` (``IngestResult`` is a seam type:
:mod:`monitor.seam`), the :class:`MonitorError` family
(drawn in :mod:`monitor`'s docstring), the per-chair state :class:`ChairState` the core
keeps, and :func:`alarm_line`, an open alarm in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.alarm_engine import PROMPTS
from monitor.errors import CoreError
from monitor.news2 import News2
from monitor.parameters import Parameter
from monitor.records import Alarm, AlarmState, Session
from monitor.ring_buffer import RingBuffer

__all__ = ["MANUAL_DEVICE", "SYSTEM_USER", "WORKFLOW_RULES", "BaselineProposal", "ChairState", "ChairStatus",
           "ConfirmationNeeded", "ConfirmationRequired", "InvalidLimits", "MonitorError",
           "NoHistory", "NotFound", "VitalStatus", "alarm_line"]

SYSTEM_USER = "system"
MANUAL_DEVICE = "manual"  # the device of readings a nurse enters




class MonitorError(CoreError):
    """An action the core refuses (unknown chair, session or alarm; a step not allowed)."""


class NotFound(MonitorError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class NoHistory(MonitorError):
    """The stored history cannot be read now: no store, or its writer is not committing."""


class ConfirmationRequired(MonitorError):
    """An action that needs the operator's explicit confirmation; ``items`` are the clinical
    lines to show in the confirmation (e.g. the open alarms an end of session would close)."""

    def __init__(self, message: str, items: Sequence[str]) -> None:
        super().__init__(message)
        self.items = tuple(items)


class InvalidLimits(MonitorError, ValueError):
    """Limits a clinician would refuse. ``field`` names the field of the request
    (``rules[1].low``), ``problem`` what is wrong, ``clinical`` both in clinical words."""

    def __init__(self, field: str, problem: str, clinical: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field, self.problem, self.clinical = field, problem, clinical


class ConfirmationNeeded(ConfirmationRequired):
    """Limits that would alarm later than the chair's profile defaults: ``changes`` (the
    ``items``) lists them in clinical words (``SpO2 low limit 90 % → 88 %``)."""

    def __init__(self, changes: Sequence[str]) -> None:
        super().__init__("these changes make alarms less sensitive than the profile's defaults and "
                         "need confirmation: " + "; ".join(changes), changes)

    @property
    def changes(self) -> tuple[str, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class BaselineProposal:
    """A pre-infusion baseline for the nurse to confirm: the mean per parameter of the
    readings between ``since`` and ``until`` that were not in alarm (nor flagged)."""

    values: dict[str, float]
    since: float
    until: float
    used: dict[str, int]  # readings averaged, per parameter
    left_out: dict[str, int]  # readings left out as in alarm or flagged, per parameter


@dataclass(frozen=True, slots=True)
class VitalStatus:
    parameter: Parameter
    value: float | None
    time: float | None  # device time of the value
    age_s: float | None
    stale: bool


@dataclass(frozen=True, slots=True)
class ChairStatus:
    chair: str
    label: str
    connection: str  # online, stale, offline
    last_reading_at: float | None
    vitals: dict[str, VitalStatus]
    news2: News2
    alarms: list[Alarm]
    session: Session | None
    paused_until: float | None
    # continuous parameters whose latest reading arrived late: key -> seconds behind the
    # monitor's clock (the tile shows DELAYED; the API's "delayed")
    delayed: dict[str, float] = field(default_factory=dict)



#: Reminders of the session's own workflow, which end with it: they need no confirmation.
WORKFLOW_RULES = frozenset(PROMPTS) | {"nibp_overdue"}

STATE_TEXT = {AlarmState.ACTIVE: "sounding", AlarmState.PAUSED: "audio paused",
               AlarmState.ACKNOWLEDGED: "acknowledged, condition present",
               AlarmState.LATCHED: "latched, not acknowledged"}


def alarm_line(alarm: Alarm) -> str:
    """``*** NIBP MAP 45 < 65 (latched, not acknowledged)``: an open alarm in one line."""
    return f"{alarm.priority.marker} {alarm.message} ({STATE_TEXT.get(alarm.state, alarm.state.value)})"


@dataclass(slots=True)
class ChairState:
    """What the core holds per chair: its ring buffers, when readings came, its session."""

    id: str
    label: str
    buffers: dict[str, RingBuffer]
    last_receive: float | None = None
    received: dict[str, float] = field(default_factory=dict)  # param -> when its latest value came
    offline_sources: dict[str, float] = field(default_factory=dict)  # source -> reported at
    session: Session | None = None

