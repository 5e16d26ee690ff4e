"""The session record every export carries, gathered from the store.

:class:`ExportContext` is what an export knows besides the store: the session, the time of
the export, the window of readings (start to end, or to the export time for a session
still running: a *partial* export), and from the bay's configuration the chair's label,
the bay, the protocol's label, the limit rules the session started with, and the zone the
printable report shows times in (``[bay] timezone``; the machine-readable formats are UTC).

:func:`load_record` reads the small part of a session (events, alarm events, operator
actions: a few hundred rows at most) into a :class:`SessionRecord`. Readings are never
loaded whole: :func:`session_readings` streams them from the store in device-time order,
and :func:`with_nibp_cycles` groups the three values of each NIBP cuff cycle on the way.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from monitor.alarm_rules import DEFAULT_RULES, LimitRule, rules_from_dicts
from monitor.config import BayConfig, example_presets, merge_rules
from monitor.localtime import machine_zone
from monitor.readings import Reading
from monitor.records import (
    AlarmEvent,
    AlarmKind,
    AlarmState,
    OperatorAction,
    Priority,
    Session,
    SessionEvent,
    SessionEventKind,
)
from monitor.store.protocol import Store

__all__ = [
    "NIBP_CYCLE_WINDOW_S",
    "NIBP_KEYS",
    "AlarmSummary",
    "ExportContext",
    "NibpCycle",
    "SessionRecord",
    "load_record",
    "make_context",
    "session_readings",
    "software_version",
    "with_nibp_cycles",
]

NIBP_KEYS = ("nibp_sys", "nibp_dia", "nibp_map")
#: Values of one device's NIBP within this many seconds of the cycle's first value, each
#: parameter once, belong to one cuff cycle (a cycle takes 30-40 s; devices send the three
#: values with one time, but HL7 gateways may time them apart).
NIBP_CYCLE_WINDOW_S = 60.0
# a reading time a little after the session's end still belongs to it: the alarm events
# that the end itself causes (disarm) carry exactly the end time
_END_SLACK_S = 0.001


def software_version() -> str:
    try:
        return importlib.metadata.version("chairside")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


@dataclass(frozen=True, slots=True)
class ExportContext:
    session: Session
    now: float  # when the export is made
    chair_label: str
    bay: str
    protocol_label: str
    base_rules: tuple[LimitRule, ...]  # the chair's profile with the protocol's limits
    software_version: str
    zone: tzinfo = UTC  # the zone of the human-readable report (the bay's [bay] timezone)

    @property
    def partial(self) -> bool:
        """The session had not ended when exported: the export covers it up to ``now``."""
        return self.session.ended_at is None

    @property
    def start(self) -> float:
        return self.session.started_at

    @property
    def end(self) -> float:
        """The end of the readings window (exclusive): the session's end, or the export time."""
        return self.session.ended_at if self.session.ended_at is not None else self.now


def make_context(session: Session, now: float, config: BayConfig | None = None) -> ExportContext:
    """The context of an export; without ``config`` the chair id stands for its label and
    the built-in adult limits with the shipped example presets for the rules."""
    presets = config.presets() if config is not None else example_presets()
    preset = presets.get(session.protocol)
    try:
        chair_label = config.chair(session.chair).title if config is not None else session.chair
        profile = config.chair_rules(session.chair) if config is not None else DEFAULT_RULES
    except KeyError:  # a chair no longer configured
        chair_label, profile = session.chair, DEFAULT_RULES
    return ExportContext(
        session=session, now=now, chair_label=chair_label,
        bay=config.bay.id if config is not None else "",
        protocol_label=preset.label if preset else session.protocol,
        base_rules=merge_rules(profile, preset.limits if preset else ()),
        software_version=software_version(),
        zone=config.bay.zone if config is not None else machine_zone(),
    )


@dataclass(slots=True)
class AlarmSummary:
    """One alarm of the session with what was done about it."""

    id: int
    code: str
    kind: AlarmKind
    priority: Priority
    parameter: str | None
    message: str  # as raised ("SpO2 86 < 90")
    raised_at: float  # annunciated (after its delay), monitor time
    value: float | None
    limit: float | None
    acknowledged: list[tuple[float, str]] = field(default_factory=list)  # (time, user)
    paused: list[tuple[float, str, float | None]] = field(default_factory=list)  # (time, user, until)
    cleared_at: float | None = None
    cleared_note: str = ""
    state: AlarmState = AlarmState.ACTIVE  # at the end of the export window
    onset_at: float | None = None  # the condition began: device time of the first breaching reading

    @property
    def began(self) -> float:
        """When the episode began (its onset; the annunciation for alarms recorded before
        onsets were)."""
        return self.raised_at if self.onset_at is None else self.onset_at


@dataclass(slots=True)
class SessionRecord:
    ctx: ExportContext
    events: list[SessionEvent]
    alarm_events: list[AlarmEvent]
    actions: list[OperatorAction]

    @property
    def session(self) -> Session:
        return self.ctx.session

    @property
    def notes(self) -> list[SessionEvent]:
        return [e for e in self.events if e.kind is SessionEventKind.NOTE]

    @property
    def timeline(self) -> list[SessionEvent]:
        """Every session event but the notes: infusion events, baseline, limits, end."""
        return [e for e in self.events if e.kind is not SessionEventKind.NOTE]

    def alarms(self) -> list[AlarmSummary]:
        """The session's alarms in the order they were raised."""
        out: dict[int, AlarmSummary] = {}
        for e in self.alarm_events:
            a = e.alarm
            s = out.get(e.alarm_id)
            if s is None:  # raised here, or (raised before the session) first seen here
                s = out[e.alarm_id] = AlarmSummary(
                    a.id, a.code, a.kind, a.priority, a.parameter, a.message, a.raised_at,
                    a.value, a.limit, onset_at=a.onset_at)
            s.state = e.new_state
            if e.user and (e.new_state is AlarmState.ACKNOWLEDGED or e.note == "acknowledged"):
                s.acknowledged.append((e.time, e.user))
            elif e.user and e.new_state is AlarmState.PAUSED:
                s.paused.append((e.time, e.user, a.paused_until))
            if e.new_state is AlarmState.CLEARED:
                s.cleared_at, s.cleared_note = e.time, e.note
        return sorted(out.values(), key=lambda s: (s.raised_at, s.id))

    def rules_timeline(self) -> list[tuple[float, tuple[LimitRule, ...], dict[str, float]]]:
        """(from time, rules in force, baseline) for each change of limits or baseline."""
        overrides: tuple[LimitRule, ...] = ()
        baseline: dict[str, float] = {}
        out = [(self.ctx.start, merge_rules(self.ctx.base_rules), dict(baseline))]
        for e in self.events:
            if e.kind is SessionEventKind.LIMITS_CHANGED:
                try:
                    overrides = rules_from_dicts(e.data.get("rules", []))
                except ValueError:
                    continue
            elif e.kind is SessionEventKind.BASELINE_SET:
                baseline = dict(e.data.get("baseline", {}))
            else:
                continue
            out.append((e.time, merge_rules(self.ctx.base_rules, overrides), dict(baseline)))
        return out


def load_record(store: Store, ctx: ExportContext) -> SessionRecord:
    s = ctx.session
    end = ctx.end + _END_SLACK_S
    events = [e for e in store.session_events(s.id) if e.time <= end]
    alarm_events = store.alarm_events(s.chair, ctx.start, end)
    actions = [a for a in store.operator_actions(s.chair, ctx.start) if a.time <= end]
    return SessionRecord(ctx, events, alarm_events, actions)


def session_readings(store: Store, ctx: ExportContext) -> Iterator[Reading]:
    """The session's readings (its chair's, from its start to its end), streamed in
    device-time order."""
    return store.iter_readings(ctx.session.chair, ctx.start, ctx.end)


@dataclass(slots=True)
class NibpCycle:
    """The values of one NIBP cuff cycle (any of them may be missing or None)."""

    time: float  # device time of the first value
    device: str
    readings: dict[str, Reading] = field(default_factory=dict)  # nibp_* key -> reading

    def value(self, key: str) -> float | None:
        r = self.readings.get(key)
        return None if r is None else r.value

    @property
    def flags(self) -> int:
        out = 0
        for r in self.readings.values():
            out |= r.flags
        return out

    @property
    def receive_time(self) -> float:
        return min(r.receive_time for r in self.readings.values())


def with_nibp_cycles(readings: Iterable[Reading]) -> Iterator[Reading | NibpCycle]:
    """Continuous readings as they come, NIBP readings grouped into :class:`NibpCycle`
    (yielded once complete, once a value that cannot belong to it arrives, or once the
    stream has moved on past its window), in device-time order give or take a cycle."""
    pending: dict[str, NibpCycle] = {}  # device -> open cycle
    for r in readings:
        if pending:
            t = r.device_time
            for device in [d for d, c in pending.items() if t - c.time > NIBP_CYCLE_WINDOW_S]:
                yield pending.pop(device)
        if r.parameter not in NIBP_KEYS:
            yield r
            continue
        cycle = pending.get(r.device)
        if cycle is not None and r.parameter in cycle.readings:
            yield pending.pop(r.device)
            cycle = None
        if cycle is None:
            cycle = pending[r.device] = NibpCycle(r.device_time, r.device)
        cycle.readings[r.parameter] = r
        if len(cycle.readings) == len(NIBP_KEYS):
            yield pending.pop(r.device)
    yield from sorted(pending.values(), key=lambda c: c.time)

