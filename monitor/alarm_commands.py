"""The alarm engine's commands (what :meth:`monitor.alarm_engine.AlarmEngine.apply` takes:
each one a frozen record, listed in :mod:`monitor.alarm_engine`'s docstring), the workflow
prompts' codes, and the errors an operator command can meet (:class:`AlarmError`,
:class:`UnknownAlarm`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor.alarm_rules import LimitRule
from monitor.errors import CoreError
from monitor.readings import Reading
from monitor.records import Alarm

__all__ = [
    "PROMPTS", "Acknowledge", "AlarmError", "Arm", "ClockSkew", "Command", "Disarm", "Notice", "Observe",
    "PauseAudio", "Restore", "SetBaseline", "SetConnection", "SetRules", "SetSchedule", "Tick",
    "UnknownAlarm",
]


class AlarmError(CoreError):
    """An operator command that cannot be carried out."""


class UnknownAlarm(AlarmError, KeyError):
    pass




@dataclass(frozen=True, slots=True)
class Observe:
    readings: Sequence[Reading]
    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


@dataclass(frozen=True, slots=True)
class Acknowledge:
    alarm_id: int
    user: str
    now: float


@dataclass(frozen=True, slots=True)
class PauseAudio:
    chair: str
    user: str
    now: float
    duration_s: float | None = None  # None: the configured pause time


@dataclass(frozen=True, slots=True)
class SetRules:
    chair: str
    rules: tuple[LimitRule, ...]
    now: float
    user: str | None = None
    latest: Mapping[str, float] = field(default_factory=dict)  # fresh values, to re-judge by


@dataclass(frozen=True, slots=True)
class Arm:
    chair: str
    now: float
    nibp_interval_s: float | None = None
    baseline: Mapping[str, float] = field(default_factory=dict)
    nibp_expected: bool = True  # False: no source of the chair can deliver NIBP


@dataclass(frozen=True, slots=True)
class Disarm:
    chair: str
    now: float
    user: str | None = None
    note: str = "session ended"


@dataclass(frozen=True, slots=True)
class SetSchedule:
    """Engine times at which the running infusion counts as overrun and the observation as
    complete (None: not applicable now); ``detail`` texts for the prompts' messages."""

    chair: str
    now: float
    infusion_due: float | None = None
    observation_due: float | None = None
    infusion_detail: str = ""
    observation_detail: str = ""


@dataclass(frozen=True, slots=True)
class SetBaseline:
    chair: str
    baseline: Mapping[str, float]
    now: float


@dataclass(frozen=True, slots=True)
class SetConnection:
    chair: str
    source: str
    online: bool
    now: float
    detail: str = ""
    parameters: frozenset[str] | None = None  # what the source delivers; None: every one
    transport: str = ""  # the source's kind (mqtt, serial, hl7), named in the message


@dataclass(frozen=True, slots=True)
class ClockSkew:
    """Readings of ``device`` came stamped ``ahead_s`` seconds ahead of the monitor's clock:
    a "device clock wrong" technical alarm until none has for ``clock_ok_after_s``."""

    chair: str
    device: str
    ahead_s: float
    now: float


@dataclass(frozen=True, slots=True)
class Notice:
    """Something that happened once and cannot be undone (readings lost in a gap of a
    device's sequence): a technical alarm that stands until acknowledged. Another notice
    with the same ``key`` while it stands adds ``count`` to it and says so."""

    chair: str
    key: str
    code: str
    message: str  # with "{count}" for the running total
    count: int
    now: float


@dataclass(frozen=True, slots=True)
class Restore:
    alarms: Sequence[Alarm]
    next_id: int


Command = (
    Observe | Tick | Acknowledge | PauseAudio | SetRules | Arm | Disarm | SetBaseline
    | SetConnection | SetSchedule | Notice | ClockSkew | Restore
)

#: Advisory prompts of the session workflow (technical kind, LOW by default): rule id -> code.
PROMPTS = {"infusion_overrun": "INFUSION_OVERRUN", "observation_complete": "OBSERVATION_COMPLETE"}
