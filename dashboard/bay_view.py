"""The view models of the bay screen: what the browser gets each second (:func:`bay_view`),
each chair's tile (:func:`tile_view`, its fields :data:`TILE_FIELDS`), the session's phase,
the tone that sounds, the alarm list's rows and the pop-ups, and the grid's shape. Each takes
the core's records and returns plain data; none reads the core, the store or the clock.

    bay_view(chairs, now, bay_name)   -> ({"chairs": {id: tile}, "sound", "clock", ...}, popups)
    tile_view(status, now)            -> the strings and classes of one chair's tile
    popup_views(alarms, labels, now)  -> the pop-ups: per chair its most urgent unacknowledged alarm
    alarm_views(alarms, labels, now)  -> the alarm list's rows, most urgent first
    sound_state(alarms)               -> "high" | "medium" | "low" | "silent"
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from dashboard.formatting import alarm_text, fmt_age, fmt_clock, fmt_duration
from monitor.core import ChairStatus, VitalStatus
from monitor.records import Alarm, AlarmKind, AlarmState, Priority, Session
from monitor.records import SessionState as S
from monitor.sessions import observation_remaining

__all__ = ["TILE_FIELDS", "alarm_views", "bay_view", "grid_shape", "popup_signature", "popup_views",
           "session_phase", "sound_state", "tile_view"]

#: The live fields of a tile: (field, property). The page renders an element per field with
#: the id {"type": "tf", "chair": ..., "f": field, "g": render}; one clientside callback
#: copies ``tile[field]`` into ``children``, ``tile[field + "_cls"]`` into ``className`` and
#: ``tile[field + "_title"]`` into ``title`` (the tooltip: the full text a tile truncates).
TILE_FIELDS: tuple[tuple[str, str], ...] = (
    ("tile", "className"),
    ("conn", "children"), ("conn", "className"),
    ("patient", "children"), ("proto", "children"), ("phase", "children"), ("phase", "className"),
    ("hr_label", "children"), ("hr", "children"), ("hr", "className"), ("hr_age", "children"),
    ("spo2", "children"), ("spo2", "className"), ("spo2_age", "children"),
    ("nibp", "children"), ("nibp", "className"), ("nibp_map", "children"),
    ("nibp_age", "children"), ("nibp_age", "className"),
    ("news", "children"), ("news", "className"), ("news_note", "children"),
    ("alarmbar", "className"), ("alarm", "children"), ("alarm", "title"), ("alarm_state", "children"),
)

_OPEN_UNACKED = (AlarmState.ACTIVE, AlarmState.PAUSED, AlarmState.LATCHED)
_NIBP = ("nibp_sys", "nibp_dia", "nibp_map")


def grid_shape(chairs: int) -> tuple[int, int]:
    """(columns, rows) of the bay grid on a 16:9 wall screen: 8 -> 4x2, 16 -> 4x4, 24 -> 6x4."""
    n = max(1, chairs)
    if n <= 4:
        cols = n
    elif n <= 16:
        cols = 4
    elif n <= 20:
        cols = 5
    elif n <= 30:
        cols = 6
    else:
        cols = 8
    return cols, math.ceil(n / cols)


def session_phase(session: Session | None, now: float) -> str:
    """What the session is doing and for how long: ``infusing 23:10 / 60 min``."""
    if session is None:
        return ""
    if session.state is S.INFUSING and session.infusion_started_at is not None:
        planned = f" / {session.planned_minutes:g} min" if session.planned_minutes else ""
        return f"infusing {fmt_duration(now - session.infusion_started_at)}{planned}"
    if session.state is S.INFUSION_PAUSED:
        return f"infusion paused {fmt_duration(now - session.updated_at)}"
    if session.state is S.OBSERVATION:
        left = observation_remaining(session, now)
        if left is None:
            since = session.observation_started_at or session.updated_at
            return f"observation {fmt_duration(now - since)}"
        if left < 0:
            return f"observation due {fmt_duration(-left)} ago"
        return f"observation {fmt_duration(left)} left"
    if session.state is S.MONITORING and session.infusion_stopped_at is not None:
        return f"infusion stopped {fmt_duration(now - session.infusion_stopped_at)} ago"
    if session.state is S.MONITORING:
        return f"monitoring {fmt_duration(now - session.started_at)}"
    return "ended"


# --- the bay as the screen shows it -----------------------------------------------------


def sound_state(alarms: Iterable[Alarm]) -> str:
    """The tone the bay screen plays: the highest priority of the alarms that sound."""
    top = max((a.priority for a in alarms if a.sounding), default=None)
    return top.label if top is not None else "silent"


def _top_alarms(alarms: Sequence[Alarm]) -> list[Alarm]:
    """Most urgent first: priority, then unacknowledged before acknowledged, then oldest
    (the alarm that started an episode, e.g. "sensor off" before the "no data" it causes)."""
    return sorted(alarms, key=lambda a: (-a.priority, a.state not in _OPEN_UNACKED, a.raised_at, a.id))


def _alarm_for(alarms: Sequence[Alarm], params: Iterable[str]) -> Alarm | None:
    """The most urgent physiological alarm on these parameters (it colours the number)."""
    keys = set(params)
    found = [a for a in alarms if a.parameter in keys and a.kind is AlarmKind.PHYSIOLOGICAL]
    return _top_alarms(found)[0] if found else None


def _vital(v: VitalStatus, base: str, alarm: Alarm | None, offline: bool) -> tuple[str, str, str]:
    """(text, class, age text) of one big number; a stale value (or any value of a chair
    that is offline) is greyed out, struck through and shows its age."""
    cls = base
    if v.value is None:
        return "---", cls + " none", "no data"
    text = v.parameter.format(v.value)
    old = v.stale or offline
    if old:
        cls += " stale"
    if alarm is not None:
        cls += f" in-alarm in-{alarm.priority.label}"
    return text, cls, (fmt_age(v.age_s) if old else "")


def tile_view(status: ChairStatus, now: float) -> dict[str, str]:
    """Every string and class of one chair's tile (keys: TILE_FIELDS, ``_cls`` for classes)."""
    out: dict[str, str] = {}
    alarms = _top_alarms(status.alarms)
    tile_cls = f"tile conn-{status.connection}"
    if alarms:
        top = alarms[0].priority
        at_top = [a for a in alarms if a.priority is top]
        tile_cls += f" alarm-{top.label}"
        if any(a.state in _OPEN_UNACKED for a in at_top):
            tile_cls += f" flash-{top.label}" if top is not Priority.LOW else ""
        else:
            tile_cls += " acked"
        if all(a.kind is AlarmKind.TECHNICAL for a in at_top):
            tile_cls += " tech"
    if status.session is None:
        tile_cls += " no-session"
    out["tile_cls"] = tile_cls

    age = None if status.last_reading_at is None else now - status.last_reading_at
    out["conn"] = {"online": "ONLINE", "stale": f"STALE {fmt_age(age)}",
                   "offline": f"OFFLINE {fmt_age(age)}" if age is not None else "OFFLINE"
                   }[status.connection]
    out["conn_cls"] = f"conn conn-{status.connection}"
    if status.connection == "online" and status.delayed:  # arriving, but late: not ONLINE
        out["conn"] = f"DELAYED {fmt_age(max(status.delayed.values()))}"
        out["conn_cls"] = "conn conn-delayed"
        out["tile_cls"] = tile_cls.replace("conn-online", "conn-delayed")

    s = status.session
    out["patient"] = s.patient if s else "No session"
    out["proto"] = (s.drug or s.protocol or "no protocol") if s is not None else ""
    out["phase"] = session_phase(s, now)
    codes = {a.code for a in status.alarms}
    out["phase_cls"] = "phase overrun" if "INFUSION_OVERRUN" in codes else \
        "phase prompt" if "OBSERVATION_COMPLETE" in codes else "phase"

    vitals = status.vitals
    hr, pr = vitals["hr"], vitals["pr"]
    pulse = hr if (hr.value is not None and not hr.stale) or pr.value is None or (
        pr.stale and hr.value is not None) else pr
    out["hr_label"] = "HR" if pulse is hr else "PR"
    offline = status.connection == "offline"
    out["hr"], out["hr_cls"], out["hr_age"] = _vital(
        pulse, "val val-hr", _alarm_for(alarms, ("hr", "pr")), offline)
    out["spo2"], out["spo2_cls"], out["spo2_age"] = _vital(
        vitals["spo2"], "val val-spo2", _alarm_for(alarms, ("spo2",)), offline)

    sys_, dia, mean = vitals["nibp_sys"], vitals["nibp_dia"], vitals["nibp_map"]
    nibp_alarm = _alarm_for(alarms, _NIBP)
    if sys_.value is None:
        out["nibp"], out["nibp_map"], out["nibp_age"] = "---/---", "", "no reading"
        out["nibp_cls"], out["nibp_age_cls"] = "val val-nibp none", "age nibp-age"
    else:
        out["nibp"] = f"{sys_.parameter.format(sys_.value)}/{dia.parameter.format(dia.value)}"
        out["nibp_map"] = f"({mean.parameter.format(mean.value)})" if mean.value is not None else ""
        cls = "val val-nibp" + (" stale" if sys_.stale or offline else "")
        if nibp_alarm is not None:
            cls += f" in-alarm in-{nibp_alarm.priority.label}"
        out["nibp_cls"] = cls
        out["nibp_age"] = f"{fmt_age(sys_.age_s)} ago"
        interval = s.nibp_interval_s if s is not None and s.nibp_interval_s else 3600.0
        overdue = sys_.age_s is not None and sys_.age_s > interval + 60
        out["nibp_age_cls"] = "age nibp-age" + (" overdue" if overdue else "")

    n = status.news2
    if not n.components:
        out["news"], out["news_cls"], out["news_note"] = "–", "news news-none", "partial"
    else:
        out["news"] = str(n.total)
        out["news_cls"] = f"news news-{n.response}"
        missing = {"spo2": "SpO2", "systolic": "BP", "pulse": "pulse"}
        out["news_note"] = "partial" + ("" if not n.missing else
                                        " · no " + ", ".join(missing[m] for m in n.missing))

    if not alarms:
        out["alarm"], out["alarmbar_cls"], out["alarm_state"] = "", "alarmbar alarm-none", ""
        out["alarm_title"] = ""
    else:
        top_alarm = alarms[0]
        out["alarm"] = alarm_text(top_alarm)
        out["alarm_title"] = "\n".join(alarm_text(a) for a in alarms)  # in full, every one
        cls = f"alarmbar alarm-{top_alarm.priority.label}"
        if top_alarm.kind is AlarmKind.TECHNICAL:
            cls += " tech"
        if top_alarm.state is AlarmState.ACKNOWLEDGED:
            cls += " acked"
        out["alarmbar_cls"] = cls
        parts = [_state_text(top_alarm, now)]
        if len(alarms) > 1:
            parts.append(f"+{len(alarms) - 1}")
        out["alarm_state"] = " ".join(p for p in parts if p)
    return out


def _state_text(alarm: Alarm, now: float) -> str:
    if alarm.kind is AlarmKind.TECHNICAL and alarm.state is AlarmState.ACTIVE:
        return "TECH"
    if alarm.state is AlarmState.PAUSED and alarm.paused_until is not None:
        return f"AUDIO PAUSED {fmt_duration(max(0.0, alarm.paused_until - now))}"
    if alarm.state is AlarmState.ACKNOWLEDGED:
        return f"ACK {alarm.acknowledged_by or ''}".strip()
    if alarm.state is AlarmState.LATCHED:
        return "LATCHED"
    return ""


def alarm_views(alarms: Sequence[Alarm], labels: dict[str, str], now: float, *,
                acknowledged: bool = False) -> list[dict[str, Any]]:
    """Open alarms as the pop-ups and the alarm list show them, most urgent first; without
    ``acknowledged``, only those nobody has acknowledged yet (the pop-ups)."""
    out = []
    for a in _top_alarms([a for a in alarms if acknowledged or a.state in _OPEN_UNACKED]):
        if a.state is AlarmState.PAUSED and a.paused_until is not None:
            state = f"Audio paused {fmt_duration(max(0.0, a.paused_until - now))}"
        elif a.state is AlarmState.LATCHED:
            state = "Condition gone (latched): acknowledge to clear"
        elif a.state is AlarmState.ACKNOWLEDGED:
            state = f"Acknowledged by {a.acknowledged_by or '?'} {fmt_clock(a.acknowledged_at)}"
        else:
            state = "Sounding"
        out.append({
            "id": a.id, "chair": a.chair, "chair_label": labels.get(a.chair, a.chair),
            "text": alarm_text(a), "priority": a.priority.label, "state": a.state.value,
            "state_text": state, "technical": a.kind is AlarmKind.TECHNICAL,
            "time": fmt_clock(a.raised_at), "paused": a.state is AlarmState.PAUSED,
        })
    return out


def popup_views(alarms: Sequence[Alarm], labels: dict[str, str], now: float) -> list[dict[str, Any]]:
    """The pop-ups: one per chair with alarms nobody has acknowledged, showing its most
    urgent one (``others``: how many more wait on that chair), most urgent chair first."""
    shown: dict[str, dict[str, Any]] = {}
    for view in alarm_views(alarms, labels, now):
        if view["chair"] in shown:
            shown[view["chair"]]["others"] += 1
        else:
            shown[view["chair"]] = view | {"others": 0}
    return list(shown.values())


def popup_signature(popups: Sequence[dict[str, Any]]) -> str:
    """Changes exactly when the rendered pop-ups would (the page skips re-rendering otherwise)."""
    return "|".join(f"{p['id']}:{p['state']}:{p['state_text']}:{p['text']}:{p.get('others')}" for p in popups)


def bay_view(chairs: Sequence[ChairStatus], now: float, bay_name: str = "",
             max_popups: int = 3) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The whole bay for one tick: what the browser gets each second (JSON), and the pop-ups."""
    alarms = [a for c in chairs for a in c.alarms]
    labels = {c.chair: c.label for c in chairs}
    popups = popup_views(alarms, labels, now)
    data = {
        "t": now, "clock": fmt_clock(now), "bay": bay_name, "sound": sound_state(alarms),
        "alarms": len(alarms),
        "alarms_cls": "nav-count" + (f" alarm-{max(a.priority for a in alarms).label}" if alarms else ""),
        "chairs": {c.chair: tile_view(c, now) for c in chairs},
        "popups_more": max(0, len(popups) - max_popups),
    }
    return data, popups[:max_popups]
