"""Pure builders for the dashboard's forms and tables, and the one place the pages import the
view builders from. Each takes plain data and returns plain data; none reads the core, the
store or the clock, so each is tested without a browser or a server.

    limit_changes(rules, form)        -> the rules a limits form changed (config form)
    merge_overrides(existing, changed)-> a session's limit overrides after a change
    alarm_event_row(event)            -> one line of an alarm history table

Re-exported from the modules that hold them: the bay screen's view models
(``dashboard.bay_view``: bay_view, tile_view, popup_views, alarm_views, sound_state...), the
formatting of times and alarms (``dashboard.formatting``) and the SVG sparklines and colours
(``dashboard.sparkline``). The chair page's trend figure is in ``dashboard.trend_figure``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dashboard.bay_view import (
    TILE_FIELDS,
    alarm_views,
    bay_view,
    grid_shape,
    popup_signature,
    popup_views,
    session_phase,
    sound_state,
    tile_view,
)
from dashboard.formatting import (
    alarm_text,
    display_zone,
    fmt_age,
    fmt_clock,
    fmt_date,
    fmt_duration,
    set_display_zone,
)
from dashboard.sparkline import COLOURS, make_sparkline_svg, svg_data_uri
from monitor.alarm_rules import LimitRule, rules_from_dicts
from monitor.records import AlarmEvent

__all__ = ["COLOURS", "TILE_FIELDS", "alarm_event_row", "alarm_text", "alarm_views", "bay_view",
           "display_zone", "fmt_age", "fmt_clock", "fmt_date", "fmt_duration", "grid_shape",
           "limit_changes", "make_sparkline_svg", "merge_overrides", "popup_signature", "popup_views",
           "session_phase", "set_display_zone", "sound_state", "svg_data_uri", "tile_view"]


def alarm_event_row(e: AlarmEvent) -> dict[str, str]:
    """One line of an alarm history table."""
    a = e.alarm
    change = e.new_state.value if e.old_state is None else f"{e.old_state.value} → {e.new_state.value}"
    return {"time": fmt_clock(e.time), "date": fmt_date(e.time),
            "chair": e.chair, "priority": a.priority.label, "kind": a.kind.value,
            "message": alarm_text(a), "change": change, "user": e.user or "", "note": e.note}


def limit_changes(rules: tuple[LimitRule, ...], values: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    """The rules whose value or delay the limits form changed, in their config form
    (``LimitRule.as_dict``). ``values`` maps (rule id, "value" | "delay") to the form's entry;
    a field left empty (or not a number) raises ValueError naming the limit. The core
    validates the values themselves (``Monitor.set_limits``)."""
    out = []
    for r in rules:
        d = r.as_dict()
        new_value = values.get((r.id, "value"))
        new_delay = values.get((r.id, "delay"))
        for part, entry in (("value", new_value), ("delay", new_delay)):
            if (r.id, part) in values and (entry is None or isinstance(entry, bool)
                                            or not isinstance(entry, int | float)):
                what = r.label if part == "value" else f"{r.label} delay"
                raise ValueError(f"{what}: enter a number")
        key = next(k for k in ("low", "high", "below_baseline_pct", "above_baseline_pct") if k in d)
        changed = dict(d)
        if new_value is not None and float(new_value) != float(d[key]):
            changed[key] = float(new_value)
        if new_delay is not None and float(new_delay) != float(d.get("delay_s", 0)):
            changed["delay_s"] = float(new_delay)
        if not changed.get("delay_s"):
            changed.pop("delay_s", None)
        if changed != d:
            out.append(changed)
    return out


def merge_overrides(existing: Sequence[dict[str, Any]],
                    changed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A session's limit overrides after a change: each changed rule replaces the override
    of the same rule id (parameter, direction, absolute/relative, priority) or is added."""
    merged = {r.id: dict(d) for r, d in zip(rules_from_dicts(list(existing)), existing, strict=True)}
    merged.update({r.id: dict(d) for r, d in zip(rules_from_dicts(list(changed)), changed, strict=True)})
    return list(merged.values())
