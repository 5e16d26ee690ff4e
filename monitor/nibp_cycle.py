"""One NIBP cuff cycle, one clinical event: the pure judgement of a cycle's values against
the chair's NIBP rules, for the alarm engine (:mod:`monitor.alarm_engine`).

The systolic, diastolic and mean pressures of one cycle (same chair, same device time,
same batch of readings) are judged together: a cycle that breaks several limits (sys < 80
and MAP < 65) makes one alarm, at the highest priority breached, whose message names
every breached value::

    NIBP 75/40 (MAP 50): sys 75 < 80, MAP 50 < 65

Within a code (a ladder such as ``NIBP_SYS_LOW`` at 90 medium and 80 high) only the
highest rung breached is named. The alarm takes the code, rule, parameter, value and limit
of its most urgent breach, so readers of alarm codes (exports, figures) see the codes they
know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitor.alarm_rules import LimitRule
from monitor.parameters import PARAMETERS, by_key
from monitor.records import Priority
from monitor.wording import limit_text

__all__ = ["NIBP", "Breach", "cycle_breaches", "cycle_message", "holding"]

#: The intermittent parameters, in the order a message names them.
NIBP: tuple[str, ...] = tuple(p.key for p in PARAMETERS if not p.continuous)
_SHORT = {"nibp_sys": "sys", "nibp_dia": "dia", "nibp_map": "MAP"}


@dataclass(frozen=True, slots=True)
class Breach:
    rule: LimitRule
    value: float
    limit: float


def _breached(rule: LimitRule, value: float, limit: float) -> bool:
    return value < limit if rule.direction == "low" else value > limit


def cycle_breaches(rules: Iterable[LimitRule], values: Mapping[str, float],
                   baseline: Mapping[str, float]) -> list[Breach]:
    """The rules a cycle breaks, one per code (the highest rung of a ladder), most urgent
    first (priority, then sys, dia, MAP; absolute before relative)."""
    best: dict[str, Breach] = {}
    for rule in rules:
        value = values.get(rule.parameter)
        limit = rule.limit(baseline.get(rule.parameter))
        if value is None or limit is None or not _breached(rule, value, limit):
            continue
        old = best.get(rule.code)
        if old is None or rule.priority > old.rule.priority:
            best[rule.code] = Breach(rule, value, limit)
    return sorted(best.values(), key=lambda b: (
        -b.rule.priority, NIBP.index(b.rule.parameter), b.rule.relative, b.rule.direction))


def holding(rules: Iterable[LimitRule], named: Iterable[str], values: Mapping[str, float],
            baseline: Mapping[str, float]) -> Priority | None:
    """The highest priority among the rules ``named`` (by id: those an open alarm named)
    whose condition has not cleared in this cycle: still breached, back inside the limit
    but within its hysteresis band, or not measured in this cycle. None: all cleared."""
    ids = set(named)
    top: Priority | None = None
    for rule in rules:
        if rule.id not in ids:
            continue
        limit = rule.limit(baseline.get(rule.parameter))
        if limit is None:
            continue
        value = values.get(rule.parameter)
        if value is not None:
            low = rule.direction == "low"
            if value >= limit + rule.band if low else value <= limit - rule.band:
                continue
        top = rule.priority if top is None else max(top, rule.priority)
    return top


def cycle_message(values: Mapping[str, float], breaches: Iterable[Breach],
                  baseline: Mapping[str, float]) -> str:
    """``NIBP 75/40 mmHg (MAP 50): sys 75 < 80, MAP 50 < 65`` for a full cycle (the unit
    once, in the head); a cycle of one value reads like any limit message,
    ``NIBP sys 185 mmHg > 180`` (:mod:`monitor.wording`)."""

    def fmt(key: str) -> str:
        param = by_key(key)
        assert param is not None
        return param.format(values[key])

    full = "nibp_sys" in values and "nibp_dia" in values
    parts = []
    for b in breaches:
        param = by_key(b.rule.parameter)
        assert param is not None
        low = b.rule.direction == "low"
        if full:
            text = f"{_SHORT[param.key]} {param.format(b.value)} {'<' if low else '>'} {b.limit:g}"
        else:
            text = limit_text(param.key, b.value, b.limit, low)
        if b.rule.relative:
            text += f" (baseline {baseline[param.key]:g} {'-' if low else '+'}{b.rule.baseline_pct:g}%)"
        parts.append(text)
    if not full:
        return ", ".join(parts)
    head = f"NIBP {fmt('nibp_sys')}/{fmt('nibp_dia')} mmHg"
    if "nibp_map" in values:
        head += f" (MAP {fmt('nibp_map')})"
    return f"{head}: {', '.join(parts)}"
