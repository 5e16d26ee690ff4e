"""What the alarm engine keeps per chair (:class:`ChairAlarms`): its rules indexed by
parameter for the hot path (:class:`RuleEntry`), pending conditions, open alarms, when data
was last heard, devices offline, arming, baseline, pause and schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from monitor.alarm_commands import SetSchedule
from monitor.alarm_rules import LimitRule
from monitor.records import Alarm, Priority

__all__ = ["ChairAlarms", "RuleEntry", "is_technical"]




@dataclass(slots=True)
class ChairAlarms:
    name: str
    rules: tuple[LimitRule, ...] = ()
    by_param: dict[str, tuple[RuleEntry, ...]] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)  # rule id -> condition since
    open: dict[str, Alarm] = field(default_factory=dict)  # rule id -> open alarm
    last_valid: dict[str, float] = field(default_factory=dict)  # param -> when (engine time)
    # param -> when data last arrived (a value, or a sensor-off report), or its device
    # came back online: the "No data" clock
    heard: dict[str, float] = field(default_factory=dict)
    offline: dict[str, frozenset[str]] = field(default_factory=dict)  # source -> its params
    delayed: dict[str, float] = field(default_factory=dict)  # param -> lag (s) of its latest
    delayed_since: float | None = None  # engine time since when some parameter is delayed
    nibp_named: set[str] = field(default_factory=set)  # rule ids the open NIBP alarm named
    nibp_expected: bool = True
    missing: dict[str, int] = field(default_factory=dict)  # param -> sensor flags
    armed: bool = False
    armed_at: float = 0.0
    seen: set[str] = field(default_factory=set)  # continuous params seen since armed
    nibp_interval_s: float | None = None
    last_nibp: float | None = None
    baseline: dict[str, float] = field(default_factory=dict)
    paused_until: float | None = None
    paused_priority: Priority = Priority.LOW
    schedule: SetSchedule | None = None
    skewed: dict[str, float] = field(default_factory=dict)  # device -> when last seen ahead

    def set_rules(self, rules: tuple[LimitRule, ...]) -> None:
        self.rules = rules
        by_param: dict[str, list[RuleEntry]] = {}
        # Highest priority first: a higher rung raises (and supersedes) before a lower one.
        for rule in sorted(rules, key=lambda r: -r.priority):
            by_param.setdefault(rule.parameter, []).append(
                RuleEntry(rule, rule.id, rule.direction == "low", rule.threshold))
        self.by_param = {k: tuple(v) for k, v in by_param.items()}


class RuleEntry(NamedTuple):
    """A rule with what the hot path needs precomputed."""

    rule: LimitRule
    id: str
    low: bool
    threshold: float | None  # None: relative to the baseline



def is_technical(rule_id: str) -> bool:
    """A technical condition the engine tracks itself (kept across a change of rules)."""
    return rule_id == "sensor_off" or rule_id.startswith(("no_data_", "offline_", "nibp_overdue"))
