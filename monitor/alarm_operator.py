"""The operator's side of the alarm engine (a mixin of
:class:`monitor.alarm_engine.AlarmEngine`; pure logic, every change through the engine's
``_raise`` and ``_change``): acknowledging, pausing audio, a chair's rules changing (open
alarms judged afresh), a session arming and disarming the chair, the workflow schedule and
its prompts, and restoring open alarms at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from monitor.alarm_chair import ChairAlarms, is_technical
from monitor.alarm_commands import PROMPTS, AlarmError, SetSchedule, UnknownAlarm
from monitor.alarm_episodes import NOTICE
from monitor.alarm_rules import AlarmSettings, LimitRule
from monitor.records import Alarm, AlarmEvent, AlarmKind, AlarmState, Priority

__all__ = ["OperatorCommands"]

A = AlarmState


class OperatorCommands:
    """Mixin of the alarm engine (see the module's docstring)."""

    settings: AlarmSettings
    _chairs: dict[str, ChairAlarms]
    _by_id: dict[int, tuple[ChairAlarms, str]]
    _next_id: int

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
                            events: list[AlarmEvent], why: str = ..., user: str | None = None) -> None: ...

        @staticmethod
        def _limit_message(chair: ChairAlarms, rule: LimitRule, value: float, limit: float) -> str: ...

    def _acknowledge(self, alarm_id: int, user: str, now: float, events: list[AlarmEvent]) -> None:
        found = self._by_id.get(alarm_id)
        if found is None:
            raise UnknownAlarm(f"no open alarm with id {alarm_id}")
        chair, rid = found
        alarm = chair.open[rid]
        if alarm.state is A.ACKNOWLEDGED:
            return
        # nothing to wait for once seen: a latched alarm's condition, or a notice's event, is over
        target = A.CLEARED if alarm.state is A.LATCHED or rid.startswith(NOTICE) else A.ACKNOWLEDGED
        self._change(chair, alarm, target, now, events, "acknowledged", user,
                     acknowledged_by=user, acknowledged_at=now, paused_until=None)

    def _pause(
        self, chair: ChairAlarms, user: str, now: float, duration: float | None,
        events: list[AlarmEvent],
    ) -> None:
        until = now + (self.settings.audio_pause_s if duration is None else duration)
        if duration is not None and duration <= 0:
            raise AlarmError("an audio pause needs a positive duration")
        sounding = [a for a in chair.open.values() if a.state in (A.ACTIVE, A.PAUSED)]
        chair.paused_until = until
        chair.paused_priority = max((a.priority for a in sounding), default=Priority.LOW)
        for alarm in sounding:
            self._change(chair, alarm, A.PAUSED, now, events, "audio paused", user,
                         paused_until=until)

    def _set_rules(
        self, chair: ChairAlarms, rules: tuple[LimitRule, ...], now: float, user: str | None,
        latest: Mapping[str, float], events: list[AlarmEvent],
    ) -> None:
        kept = set(rules) & set(chair.rules)
        chair.set_rules(rules)
        ids = {r.id for r in kept}
        for rid in [k for k in chair.pending if k not in ids and not is_technical(k)]:
            del chair.pending[rid]
        new = {r.id: r for r in rules}
        for rid, alarm in list(chair.open.items()):
            if alarm.kind is not AlarmKind.PHYSIOLOGICAL or rid in ids or alarm.state is A.LATCHED:
                continue  # a latched alarm's condition is gone already: it waits for its ack
            # its rule changed or went: judged afresh against the new one with the latest
            # value; what cannot be judged counts as gone (a high alarm latches)
            rule = new.get(rid)
            value = latest.get(alarm.parameter) if alarm.parameter else None
            limit = rule.limit(chair.baseline.get(rule.parameter)) if rule else None
            if rule is not None and limit is not None and value is not None and (
                    value < limit if rule.direction == "low" else value > limit):
                self._change(chair, alarm, alarm.state, now, events, "limits changed, still breached",
                             user, value=value, limit=limit,
                             message=self._limit_message(chair, rule, value, limit))
            else:
                self._condition_gone(chair, alarm, now, events, "limits changed", user)

    def _arm(
        self, chair: ChairAlarms, now: float, interval: float | None, baseline: Mapping[str, float]
    ) -> None:
        chair.armed, chair.armed_at = True, now
        chair.seen = {p for p, t in chair.last_valid.items() if now - t < self.settings.no_data_after_s}
        chair.nibp_interval_s = interval
        chair.last_nibp = None
        chair.baseline = dict(baseline)
        chair.schedule = None

    def _disarm(
        self, chair: ChairAlarms, now: float, user: str | None, note: str, events: list[AlarmEvent]
    ) -> None:
        for alarm in list(chair.open.values()):
            self._change(chair, alarm, A.CLEARED, now, events, note, user)
        chair.armed = False
        chair.seen.clear()
        chair.pending.clear()
        chair.missing.clear()
        chair.nibp_interval_s = chair.last_nibp = chair.paused_until = chair.schedule = None
        chair.baseline = {}

    def _set_schedule(self, chair: ChairAlarms, cmd: SetSchedule, events: list[AlarmEvent]) -> None:
        due = {"infusion_overrun": cmd.infusion_due, "observation_complete": cmd.observation_due}
        for rid, when in due.items():
            alarm = chair.open.get(rid)
            if alarm is not None and (when is None or cmd.now < when):
                note = "infusion stopped" if rid == "infusion_overrun" else "observation over"
                self._change(chair, alarm, A.CLEARED, cmd.now, events, note)
        has_due = cmd.infusion_due is not None or cmd.observation_due is not None
        chair.schedule = cmd if has_due else None
        if chair.armed and has_due:
            self._prompts(chair, cmd.now, events)

    def _prompts(self, chair: ChairAlarms, now: float, events: list[AlarmEvent]) -> None:
        s = chair.schedule
        assert s is not None
        for rid, due, text in (("infusion_overrun", s.infusion_due, s.infusion_detail),
                               ("observation_complete", s.observation_due, s.observation_detail)):
            if due is not None and now >= due and rid not in chair.open:
                self._raise(chair, rid, code=PROMPTS[rid], kind=AlarmKind.TECHNICAL,
                            priority=self.settings.prompt_priority, message=text, now=now,
                            events=events)

    def _restore(self, alarms: Iterable[Alarm], next_id: int) -> None:
        for alarm in alarms:
            chair = self._chairs.get(alarm.chair)
            if chair is None or not alarm.state.is_open:
                continue
            chair.open[alarm.rule] = alarm
            self._by_id[alarm.id] = (chair, alarm.rule)
            if alarm.state is A.PAUSED and alarm.paused_until is not None:
                chair.paused_until = max(chair.paused_until or 0.0, alarm.paused_until)
                chair.paused_priority = max(chair.paused_priority, alarm.priority)
        self._next_id = max(self._next_id, next_id)
