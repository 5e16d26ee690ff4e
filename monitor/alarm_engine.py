"""The alarm engine: pure logic, no I/O, no clock of its own.

Every change goes through :meth:`AlarmEngine.apply`, which takes one command and returns
the :class:`~monitor.records.AlarmEvent` list it caused; inside, every alarm state change
goes through ``_change``, so nothing changes without an event.

Commands::

    Observe(readings, now)          validated readings (limit rules, sensor flags, data seen)
    Tick(now)                       time passing (no data, NIBP overdue, pause expiry)
    Acknowledge(alarm_id, user, now)   (the core acknowledges a whole chair alarm by alarm)
    PauseAudio(chair, user, now)    silences the chair's sounding alarms for the pause time
    SetRules(chair, rules, now)     the chair's limit rules (session preset or a nurse's change)
    Arm(chair, now, nibp_interval_s, baseline, nibp_expected) / Disarm(chair, now)
                                    a session starts or ends: technical alarms are armed only
                                    while the chair has an open session; NIBP overdue only
                                    where NIBP is expected (a source that can deliver it, or
                                    the protocol demands manual readings) or has arrived
    SetBaseline(chair, baseline, now)
    SetConnection(chair, source, online, now, detail, parameters)
                                    an adapter's word on a device; while it is offline the
                                    parameters it delivers raise no "No data" of their own
    SetSchedule(chair, infusion_due, observation_due, now)
                                    when a running infusion overruns its plan and when the
                                    post-infusion observation ends: LOW advisory prompts
    Restore(alarms, next_id)        open alarms from the store at start-up

No command closes open alarms in bulk without an operator saying so: ``Disarm`` (the core
sends it only once the nurse has confirmed that the patient has left) closes them naming
that confirmation, and ``SetRules`` judges each open physiological alarm afresh against
its new limit with the latest value instead of clearing it.

Alarm states (records.AlarmState)::

    raised --> ACTIVE --ack--> ACKNOWLEDGED --condition gone--> CLEARED
                 |  ^                                              ^
           pause |  | pause expired, condition present             |
                 v  |                                              |
               PAUSED --condition gone (high, physiological)--> LATCHED --ack--+
                 (and ACTIVE likewise; any other condition gone --> CLEARED)

Rules that share a code (``SPO2_LOW`` at 90 medium and at 85 high) form a ladder: while a
higher rung is open the lower one is not raised, and raising a higher rung supersedes the
lower. Each rung keeps its own annunciation delay, measured on device time, so a burst of
late readings is judged by when they were taken; but never on a device time ahead of the
monitor's clock (``min(device_time, now)``), and a device clock that jumps back restarts
the delay rather than postponing it: no device clock can suppress an alarm.

One clinical event, one alarm:

- the values of one NIBP cuff cycle are judged together (:mod:`monitor.nibp_cycle`): one
  alarm at the highest priority breached, naming every breached value;
- a device reported offline raises ``DEVICE_OFFLINE`` and no "No data" for the
  parameters it delivers;
- a sensor reported off (``SENSOR_OFF``/``NO_SENSOR`` readings without a value) is data
  arriving: ``SENSOR_OFF``, never also ``NO_DATA``, for that parameter.

Delayed data: continuous readings whose device time lags the monitor's clock by more than
``data_delayed_after_s`` mark the parameter delayed (shown as DELAYED); lasting
``data_delayed_delay_s`` on the monitor's clock it is a technical alarm ``DATA_DELAYED``
("Data delayed: SpO2 75 s behind") that clears when the data is current again.

Modules: the commands and their errors are in :mod:`monitor.alarm_commands` (re-exported
here), the per-chair state in :mod:`monitor.alarm_chair`, the episode judgements and the
operator commands in the mixins :mod:`monitor.alarm_episodes` and :mod:`monitor.alarm_operator`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from monitor.alarm_chair import ChairAlarms, RuleEntry
from monitor.alarm_commands import (
    PROMPTS,
    Acknowledge,
    AlarmError,
    Arm,
    ClockSkew,
    Command,
    Disarm,
    Notice,
    Observe,
    PauseAudio,
    Restore,
    SetBaseline,
    SetConnection,
    SetRules,
    SetSchedule,
    Tick,
    UnknownAlarm,
)
from monitor.alarm_episodes import Episodes
from monitor.alarm_operator import OperatorCommands
from monitor.alarm_rules import AlarmSettings, LimitRule
from monitor.parameters import PARAMETERS, by_key
from monitor.readings import SENSOR_MISSING, QualityFlag, Reading
from monitor.records import Alarm, AlarmEvent, AlarmKind, AlarmState, Priority
from monitor.wording import limit_text

__all__ = [
    "PROMPTS",
    "Acknowledge",
    "AlarmEngine",
    "AlarmError",
    "Arm",
    "ClockSkew",
    "Command",
    "Disarm",
    "Notice",
    "Observe",
    "PauseAudio",
    "Restore",
    "SetBaseline",
    "SetConnection",
    "SetRules",
    "SetSchedule",
    "Tick",
    "UnknownAlarm",
]

A = AlarmState
_MISSING = int(SENSOR_MISSING)  # plain ints: IntFlag arithmetic is slow on the hot path
_DEMO = int(QualityFlag.DEMO)
#: ``pr`` rules are judged only while no fresh ECG heart rate arrives (oximeter-only chairs).
FALLBACK_FOR = {"pr": "hr"}
CONTINUOUS = frozenset(p.key for p in PARAMETERS if p.continuous)


class AlarmEngine(Episodes, OperatorCommands):
    """The alarm engine: see the module's docstring. Episodes and operator commands are
    its mixins (:mod:`monitor.alarm_episodes`, :mod:`monitor.alarm_operator`)."""

    def __init__(
        self,
        chairs: Mapping[str, tuple[LimitRule, ...]],
        settings: AlarmSettings | None = None,
    ) -> None:
        self.settings = settings or AlarmSettings()
        self._chairs: dict[str, ChairAlarms] = {}
        for name, rules in chairs.items():
            chair = ChairAlarms(name)
            chair.set_rules(tuple(rules))
            self._chairs[name] = chair
        self._next_id = 1
        self._by_id: dict[int, tuple[ChairAlarms, str]] = {}  # open alarm id -> (chair, rule id)

    # --- the one entry point -----------------------------------------------------------

    def apply(self, cmd: Command) -> list[AlarmEvent]:
        events: list[AlarmEvent] = []
        match cmd:
            case Observe(readings, now):
                self._observe(readings, now, events)
            case Tick(now):
                self._tick(now, events)
            case Acknowledge(alarm_id, user, now):
                self._acknowledge(alarm_id, user, now, events)
            case PauseAudio(chair, user, now, duration):
                self._pause(self._chair(chair), user, now, duration, events)
            case SetRules(chair, rules, now, user, latest):
                self._set_rules(self._chair(chair), rules, now, user, latest, events)
            case Arm(chair, now, interval, baseline, expected):
                self._arm(self._chair(chair), now, interval, baseline)
                self._chair(chair).nibp_expected = expected
            case Disarm(chair, now, user, note):
                self._disarm(self._chair(chair), now, user, note, events)
            case SetBaseline(chair, baseline, now):
                self._chair(chair).baseline = dict(baseline)
            case SetConnection(chair, source, online, now, detail, parameters, transport):
                self._connection(self._chair(chair), source, online, now, detail, events,
                                 CONTINUOUS if parameters is None else parameters, transport)
            case SetSchedule(chair=chair):
                self._set_schedule(self._chair(chair), cmd, events)
            case Notice(chair=chair):
                self._notice(self._chair(chair), cmd, events)
            case ClockSkew(chair=chair):
                self._clock_skew(self._chair(chair), cmd, events)
            case Restore(alarms, next_id):
                self._restore(alarms, next_id)
            case _:
                raise TypeError(f"not an alarm command: {cmd!r}")
        return events

    # --- queries (read-only) -----------------------------------------------------------

    def open_alarms(self, chair: str | None = None) -> list[Alarm]:
        chairs = self._chairs.values() if chair is None else [self._chair(chair)]
        return sorted((a for c in chairs for a in c.open.values()), key=lambda a: a.id)

    def get(self, alarm_id: int) -> Alarm | None:
        found = self._by_id.get(alarm_id)
        return found[0].open[found[1]] if found else None

    def paused_until(self, chair: str) -> float | None:
        return self._chair(chair).paused_until

    def rules(self, chair: str) -> tuple[LimitRule, ...]:
        return self._chair(chair).rules

    def baseline(self, chair: str) -> dict[str, float]:
        return dict(self._chair(chair).baseline)

    def delayed(self, chair: str) -> dict[str, float]:
        """Continuous parameters whose latest reading came late: key -> seconds behind."""
        return dict(self._chair(chair).delayed)

    @property
    def next_id(self) -> int:
        return self._next_id

    # --- state changes -----------------------------------------------------------------

    def _chair(self, name: str) -> ChairAlarms:
        try:
            return self._chairs[name]
        except KeyError:
            raise AlarmError(f"unknown chair {name!r}") from None

    def _raise(
        self, chair: ChairAlarms, rule_id: str, *, code: str, kind: AlarmKind, priority: Priority,
        message: str, now: float, events: list[AlarmEvent], parameter: str | None = None,
        value: float | None = None, limit: float | None = None, onset: float | None = None,
        detail: str = "",
    ) -> None:
        """Raise an alarm; ``detail`` (technical: source, device) goes to the event's note."""
        paused = chair.paused_until is not None and priority <= chair.paused_priority
        alarm = Alarm(
            id=self._next_id, chair=chair.name, code=code, rule=rule_id, kind=kind,
            priority=priority, state=A.PAUSED if paused else A.ACTIVE, message=message,
            raised_at=now, updated_at=now, parameter=parameter, value=value, limit=limit,
            paused_until=chair.paused_until if paused else None,
            onset_at=now if onset is None or not onset > float("-inf") else min(onset, now),
        )
        self._next_id += 1
        chair.open[rule_id] = alarm
        self._by_id[alarm.id] = (chair, rule_id)
        note = ("raised during audio pause" if paused else "raised") + (f": {detail}" if detail else "")
        events.append(AlarmEvent(now, chair.name, alarm.id, None, alarm.state, alarm, None, note))

    def _change(
        self, chair: ChairAlarms, alarm: Alarm, state: AlarmState, now: float,
        events: list[AlarmEvent], note: str, user: str | None = None, **fields: object,
    ) -> None:
        new = replace(alarm, state=state, updated_at=now, **fields)  # type: ignore[arg-type]
        if state is A.CLEARED:
            del chair.open[alarm.rule]
            del self._by_id[alarm.id]
            new = replace(new, cleared_at=now, paused_until=None)
        else:
            chair.open[alarm.rule] = new
        events.append(AlarmEvent(now, chair.name, alarm.id, alarm.state, state, new, user, note))

    def _condition_gone(
        self, chair: ChairAlarms, alarm: Alarm, now: float, events: list[AlarmEvent],
        why: str = "condition gone", user: str | None = None,
    ) -> None:
        latch = (
            self.settings.latch_high
            and alarm.priority is Priority.HIGH
            and alarm.kind is AlarmKind.PHYSIOLOGICAL
            and alarm.state in (A.ACTIVE, A.PAUSED)
        )
        if latch:
            self._change(chair, alarm, A.LATCHED, now, events, f"{why}, latched", user,
                         paused_until=None)
        elif alarm.state is not A.LATCHED:
            self._change(chair, alarm, A.CLEARED, now, events, why, user)

    # --- observations ------------------------------------------------------------------

    def _observe(self, readings: Sequence[Reading], now: float, events: list[AlarmEvent]) -> None:
        chairs = self._chairs
        late = self.settings.data_delayed_after_s
        cycles: dict[tuple[str, float], dict[str, float]] | None = None
        for r in readings:
            chair = chairs.get(r.chair)
            if chair is None:
                continue
            param = r.parameter
            flagged = r.flags & _MISSING
            if flagged:
                chair.missing[param] = flagged
            elif chair.missing:
                chair.missing.pop(param, None)
            # a device clock ahead of the monitor's never postpones an alarm
            when = r.device_time if r.device_time < now else now
            if chair.missing or "sensor_off" in chair.open or "sensor_off" in chair.pending:
                self._sensor_off(chair, when, now, events)
            value = r.value
            if value is None or r.flags & _DEMO:
                if flagged:  # the device is there and says why it has no value
                    self._heard(chair, param, now, events)
                continue
            chair.last_valid[param] = chair.heard[param] = now
            if param in CONTINUOUS and (now - r.device_time > late or chair.delayed):
                self._lag(chair, param, now - r.device_time, now, events)
            if chair.armed:
                self._data_seen(chair, param, now, events)
            if param not in CONTINUOUS:  # judged per cuff cycle, after the batch
                if cycles is None:
                    cycles = {}
                cycles.setdefault((r.chair, r.device_time), {})[param] = value
                continue
            for entry in chair.by_param.get(param, ()):
                thr = entry.threshold
                if (
                    thr is not None and entry.id not in chair.pending and entry.id not in chair.open
                    and (value >= thr if entry.low else value <= thr)
                ):
                    continue  # the common case: in range, nothing pending, nothing open
                self._limit(chair, entry, value, when, now, events)
        if cycles:
            for (name, when), values in cycles.items():
                self._nibp_cycle(chairs[name], values, min(when, now), now, events)

    def _limit(
        self, chair: ChairAlarms, entry: RuleEntry, value: float, when: float, now: float,
        events: list[AlarmEvent],
    ) -> None:
        rule, rid, low = entry.rule, entry.id, entry.low
        limit = rule.limit(chair.baseline.get(rule.parameter))
        if limit is None:
            return
        alarm = chair.open.get(rid)
        breached = value < limit if low else value > limit
        if alarm is not None and alarm.state is not A.LATCHED:
            recovered = value >= limit + rule.band if low else value <= limit - rule.band
            if recovered:
                chair.pending.pop(rid, None)
                self._condition_gone(chair, alarm, now, events)
            return
        if not breached:
            chair.pending.pop(rid, None)
            return
        since = chair.pending.setdefault(rid, when)
        if when < since:  # the device clock went back: the delay restarts, never stalls
            chair.pending[rid] = since = when
        if when - since < rule.delay_s or not self._may_raise(chair, rule, now) \
                or self._outranked(chair, rule):
            return
        chair.pending.pop(rid, None)
        onset = since if since > float("-inf") else when  # (-inf: a superseded rung's)
        self._supersede(chair, rule, now, events)
        message = self._limit_message(chair, rule, value, limit)
        if alarm is not None:  # latched and back: the same alarm sounds again
            self._change(chair, alarm, A.ACTIVE, now, events, "condition returned",
                         value=value, message=message)
            return
        self._raise(chair, rid, code=rule.code, kind=AlarmKind.PHYSIOLOGICAL,
                    priority=rule.priority, message=message, now=now, events=events,
                    parameter=rule.parameter, value=value, limit=limit, onset=onset)

    @staticmethod
    def _limit_message(chair: ChairAlarms, rule: LimitRule, value: float, limit: float) -> str:
        """``SpO2 86 % < 90 %`` (:mod:`monitor.wording`), or with the baseline a relative
        limit is taken from."""
        param = by_key(rule.parameter)
        assert param is not None
        low = rule.direction == "low"
        message = limit_text(rule.parameter, value, limit, low)
        if rule.relative:
            message += f" (baseline {chair.baseline[rule.parameter]:g} {'-' if low else '+'}" \
                       f"{rule.baseline_pct:g}%)"
        return message

    def _may_raise(self, chair: ChairAlarms, rule: LimitRule, now: float) -> bool:
        """A fallback parameter (PR) raises only while its primary (HR) is not arriving."""
        primary = FALLBACK_FOR.get(rule.parameter)
        if primary is None:
            return True
        seen = chair.last_valid.get(primary)
        return seen is None or now - seen >= self.settings.no_data_after_s

    def _outranked(self, chair: ChairAlarms, rule: LimitRule) -> bool:
        return any(
            a.code == rule.code and a.priority > rule.priority and a.state is not A.LATCHED
            for a in chair.open.values()
        )

    def _supersede(
        self, chair: ChairAlarms, rule: LimitRule, now: float, events: list[AlarmEvent]
    ) -> None:
        for alarm in list(chair.open.values()):
            if alarm.code == rule.code and alarm.priority < rule.priority:
                self._change(chair, alarm, A.CLEARED, now, events,
                             f"superseded by {rule.priority.label} priority")
                # Its condition has lasted its delay already: it shows again at once if it
                # still holds when the higher rung goes.
                chair.pending[alarm.rule] = float("-inf")

    def _data_seen(self, chair: ChairAlarms, param: str, now: float, events: list[AlarmEvent]) -> None:
        chair.seen.add(param)
        if chair.open:
            alarm = chair.open.get(f"no_data_{param}")
            if alarm is not None:
                self._change(chair, alarm, A.CLEARED, now, events, "data back")
            if param == "nibp_sys" and "nibp_overdue" in chair.open:
                self._change(chair, chair.open["nibp_overdue"], A.CLEARED, now, events,
                             "NIBP reading arrived")
        if param == "nibp_sys":
            chair.last_nibp = now

    # --- time --------------------------------------------------------------------------

    def _tick(self, now: float, events: list[AlarmEvent]) -> None:
        s = self.settings
        for chair in self._chairs.values():
            if chair.paused_until is not None and now >= chair.paused_until:
                chair.paused_until = None
                for alarm in list(chair.open.values()):
                    if alarm.state is A.PAUSED:
                        self._change(chair, alarm, A.ACTIVE, now, events,
                                     "audio pause expired", paused_until=None)
            if not chair.armed:
                continue
            if chair.schedule is not None:
                self._prompts(chair, now, events)
            if chair.skewed:
                self._clock_ok(chair, now, events)
            quiet = frozenset().union(*chair.offline.values()) if chair.offline else ()
            for param in chair.seen:
                if param not in CONTINUOUS or param in quiet:  # its device's offline alarm says it
                    continue
                rid = f"no_data_{param}"
                last = chair.heard.get(param, chair.armed_at)
                if rid not in chair.open and now - last >= s.no_data_after_s:
                    self._raise(chair, rid, code="NO_DATA", kind=AlarmKind.TECHNICAL,
                                priority=s.no_data_priority, message=f"No {_label(param)} data",
                                now=now, events=events, parameter=param)
            if chair.nibp_interval_s is not None and "nibp_overdue" not in chair.open and (
                    chair.nibp_expected or chair.last_nibp is not None):
                last = chair.last_nibp if chair.last_nibp is not None else chair.armed_at
                if now - last > chair.nibp_interval_s + s.nibp_overdue_grace_s:
                    minutes = (now - last) / 60
                    self._raise(chair, "nibp_overdue", code="NIBP_OVERDUE",
                                kind=AlarmKind.TECHNICAL, priority=s.nibp_overdue_priority,
                                message=f"NIBP overdue (none for {minutes:.0f} min)", now=now,
                                events=events, parameter="nibp_sys")


def _label(key: str) -> str:
    param = by_key(key)
    return param.label if param else key

