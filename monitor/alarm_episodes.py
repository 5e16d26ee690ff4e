"""One clinical event, one alarm: the parts of the alarm engine that judge an episode as a
whole rather than one reading against one rule (a mixin of
:class:`monitor.alarm_engine.AlarmEngine`; pure logic, every change through the engine's
``_raise`` and ``_change``, so every one makes an event).

- an NIBP cuff cycle: its values judged together (:mod:`monitor.nibp_cycle`), one alarm
  at the highest priority breached, naming every breached value;
- a device offline: ``DEVICE_OFFLINE``, and no "No data" for the parameters it delivers;
- a sensor off: ``SENSOR_OFF`` after its delay; its readings count as data arriving, so
  the parameter raises no ``NO_DATA`` as well;
- delayed data: ``DATA_DELAYED`` while continuous readings arrive with device times
  further behind the monitor's clock than the configured limit;
- a notice (readings lost in a gap of a device's sequence): a technical alarm that stands
  until acknowledged, a later notice of the same key adding to its count;
- a device clock ahead of the monitor's: ``DEVICE_CLOCK`` while its readings keep coming
  stamped ahead (they are kept, flagged CLOCK_SKEW, and shown at their arrival).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.nibp_cycle import NIBP, cycle_breaches, cycle_message, holding
from monitor.parameters import PARAMETERS, by_key
from monitor.readings import QualityFlag
from monitor.records import Alarm, AlarmEvent, AlarmKind, AlarmState, Priority
from monitor.wording import sensor_name, transport_name

if TYPE_CHECKING:
    from monitor.alarm_chair import ChairAlarms
    from monitor.alarm_commands import ClockSkew, Notice
    from monitor.alarm_rules import AlarmSettings

__all__ = ["NOTICE", "Episodes"]

NOTICE = "notice_"  # rule id prefix of notices: acknowledged, they are over

A = AlarmState
_ORDER = {p.key: i for i, p in enumerate(PARAMETERS)}


class Episodes:
    """Mixin of the alarm engine (see the module's docstring)."""

    settings: AlarmSettings

    if TYPE_CHECKING:  # provided by AlarmEngine
        def _raise(self, chair: ChairAlarms, rule_id: str, *, code: str, kind: AlarmKind,
                   priority: Priority, message: str, now: float, events: list[AlarmEvent],
                   parameter: str | None = None, value: float | None = None,
                   limit: float | None = None, onset: float | None = None,
                   detail: str = "") -> None: ...

        def _change(self, chair: ChairAlarms, alarm: Alarm, state: AlarmState, now: float,
                    events: list[AlarmEvent], note: str, user: str | None = None,
                    **fields: object) -> None: ...

        def _condition_gone(self, chair: ChairAlarms, alarm: Alarm, now: float,
                            events: list[AlarmEvent]) -> None: ...

    def _notice(self, chair: ChairAlarms, cmd: Notice, events: list[AlarmEvent]) -> None:
        rid = NOTICE + cmd.key
        alarm = chair.open.get(rid)
        if alarm is not None:  # the same trouble again while it stands: one alarm, counting
            count = int(alarm.value or 0) + cmd.count
            state = A.ACTIVE if alarm.state is A.ACKNOWLEDGED else alarm.state
            self._change(chair, alarm, state, cmd.now, events, "happened again", value=float(count),
                         message=cmd.message.format(count=count))
        elif chair.armed:
            self._raise(chair, rid, code=cmd.code, kind=AlarmKind.TECHNICAL,
                        priority=self.settings.notice_priority,
                        message=cmd.message.format(count=cmd.count), now=cmd.now, events=events,
                        value=float(cmd.count))

    def _clock_skew(self, chair: ChairAlarms, cmd: ClockSkew, events: list[AlarmEvent]) -> None:
        chair.skewed[cmd.device] = cmd.now
        rid = f"device_clock_{cmd.device}"
        if rid not in chair.open and chair.armed:
            self._raise(chair, rid, code="DEVICE_CLOCK", kind=AlarmKind.TECHNICAL,
                        priority=self.settings.device_clock_priority,
                        message=f"Monitor clock wrong ({cmd.ahead_s:.0f} s ahead)",
                        now=cmd.now, events=events, detail=f"device {cmd.device}")

    def _clock_ok(self, chair: ChairAlarms, now: float, events: list[AlarmEvent]) -> None:
        for device, seen in list(chair.skewed.items()):
            if now - seen >= self.settings.clock_ok_after_s:
                del chair.skewed[device]
                alarm = chair.open.get(f"device_clock_{device}")
                if alarm is not None:
                    self._change(chair, alarm, A.CLEARED, now, events, "device clock right again")

    def _nibp_cycle(self, chair: ChairAlarms, values: dict[str, float], when: float, now: float,
                    events: list[AlarmEvent]) -> None:
        """One cuff cycle's values, judged together: at most one NIBP alarm stands."""
        rules = [r for r in chair.rules if r.parameter in NIBP]
        found = cycle_breaches(rules, values, chair.baseline)
        top = found[0].rule.priority if found else None

        def standing() -> list[Alarm]:
            return [a for a in chair.open.values()
                    if a.parameter in NIBP and a.kind is AlarmKind.PHYSIOLOGICAL]

        current = max((a for a in standing() if a.state is not A.LATCHED),
                      key=lambda a: a.priority, default=None)
        if current is not None and (top is None or top <= current.priority):
            held = holding(rules, chair.nibp_named | {current.rule}, values, chair.baseline)
            if (held is not None and held >= current.priority) or top == current.priority:
                chair.nibp_named |= {b.rule.id for b in found}
                return  # the condition lasts
            self._condition_gone(chair, current, now, events)
            chair.nibp_named = set()
        if top is None:
            return
        best = found[0]
        message = cycle_message(values, found, chair.baseline)
        for alarm in standing():
            if alarm.priority < top:
                self._change(chair, alarm, A.CLEARED, now, events,
                             f"superseded by {top.label} priority")
        same = [a for a in standing() if a.priority == top]
        if any(a.state is not A.LATCHED for a in same):
            return  # one already stands at this priority (restored from before an upgrade)
        chair.nibp_named = {b.rule.id for b in found}
        back = same[0] if same else None
        if back is not None:  # latched and back: the same alarm sounds again
            self._change(chair, back, A.ACTIVE, now, events, "condition returned",
                         value=best.value, message=message)
            return
        self._raise(chair, best.rule.id, code=best.rule.code, kind=AlarmKind.PHYSIOLOGICAL,
                    priority=top, message=message, now=now, events=events,
                    parameter=best.rule.parameter, value=best.value, limit=best.limit, onset=when)

    def _sensor_off(
        self, chair: ChairAlarms, when: float, now: float, events: list[AlarmEvent]
    ) -> None:
        alarm = chair.open.get("sensor_off")
        if not chair.missing:
            chair.pending.pop("sensor_off", None)
            if alarm is not None:
                self._change(chair, alarm, A.CLEARED, now, events, "sensor back")
            return
        if alarm is not None or not chair.armed:
            return
        since = chair.pending.setdefault("sensor_off", when)
        if when < since:
            chair.pending["sensor_off"] = since = when
        if when - since < self.settings.sensor_off_delay_s:
            return
        chair.pending.pop("sensor_off", None)
        # the oximeter's sensor is named as SpO2 when its pulse rate is off with it
        param = "spo2" if "spo2" in chair.missing else next(iter(chair.missing))
        flags = chair.missing[param]
        what = "not connected" if flags & QualityFlag.NO_SENSOR else "off"
        if flags & QualityFlag.DEFECTIVE_SENSOR:
            what = "defective"
        self._raise(chair, "sensor_off", code="SENSOR_OFF", kind=AlarmKind.TECHNICAL,
                    priority=self.settings.sensor_off_priority, message=f"{sensor_name(param)} {what}",
                    now=now, events=events, parameter=param, onset=since)

    def _heard(self, chair: ChairAlarms, param: str, now: float, events: list[AlarmEvent]) -> None:
        """A reading without a value, flagged sensor off / no sensor: data is arriving."""
        chair.heard[param] = now
        alarm = chair.open.get(f"no_data_{param}")
        if alarm is not None:
            self._change(chair, alarm, A.CLEARED, now, events, "data back (sensor reported)")

    def _lag(self, chair: ChairAlarms, param: str, lag: float, now: float,
             events: list[AlarmEvent]) -> None:
        """A continuous reading ``lag`` seconds behind the monitor's clock."""
        s = self.settings
        if lag > s.data_delayed_after_s:
            chair.delayed[param] = lag
            if chair.delayed_since is None:
                chair.delayed_since = now
        else:
            chair.delayed.pop(param, None)
        alarm = chair.open.get("data_delayed")
        if not chair.delayed:
            chair.delayed_since = None
            if alarm is not None:
                self._change(chair, alarm, A.CLEARED, now, events, "data current again")
            return
        assert chair.delayed_since is not None
        if alarm is None and chair.armed and now - chair.delayed_since >= s.data_delayed_delay_s:
            names = ", ".join(_label(p) for p in sorted(chair.delayed, key=_ORDER.__getitem__))
            self._raise(chair, "data_delayed", code="DATA_DELAYED", kind=AlarmKind.TECHNICAL,
                        priority=s.data_delayed_priority,
                        message=f"{names} data delayed ({max(chair.delayed.values()):.0f} s behind)",
                        now=now, events=events, parameter=param)

    def _connection(
        self, chair: ChairAlarms, source: str, online: bool, now: float, detail: str,
        events: list[AlarmEvent], parameters: frozenset[str], transport: str = "",
    ) -> None:
        """A source (``link:<name>``: a source's own link, e.g. its broker) went away or is
        back. The message names the transport a nurse can act on (``Monitor offline
        (MQTT)``); the source's name and ``detail`` go to the event's note."""
        rid = f"offline_{source}"
        alarm = chair.open.get(rid)
        if online:
            if chair.offline.pop(source, None) is not None:
                for param in parameters:  # the "No data" clock starts again from now
                    chair.heard[param] = now
        else:
            chair.offline[source] = frozenset(parameters)
            for param in parameters:  # one event, one alarm: the offline one says it all
                no_data = chair.open.get(f"no_data_{param}")
                if no_data is not None:
                    self._change(chair, no_data, A.CLEARED, now, events, f"device {source} offline")
        if online and alarm is not None:
            self._change(chair, alarm, A.CLEARED, now, events, "device back online")
        elif not online and alarm is None and chair.armed:
            link = source.startswith("link:")  # a source's own link (its broker), not a device
            via = transport_name(transport)
            if link:
                message = f"Monitor link lost ({via} broker)" if via else "Monitor link lost"
            else:
                message = f"Monitor offline ({via})" if via else "Monitor offline"
            self._raise(chair, rid, code="LINK_DOWN" if link else "DEVICE_OFFLINE", kind=AlarmKind.TECHNICAL,
                        priority=self.settings.device_offline_priority, message=message,
                        now=now, events=events,
                        detail=f"source {source[5:] if link else source}" + (f", {detail}" if detail else ""))


def _label(key: str) -> str:
    param = by_key(key)
    return param.label if param else key
