"""Alarm rules as data: limit rules (absolute or relative to the session baseline) and the
settings of the technical alarms. Defaults follow docs/clinical.md; a site overrides them in the
configuration, a session in its protocol preset or on the chair page.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from monitor.errors import CoreError
from monitor.parameters import by_key
from monitor.records import Priority

__all__ = [
    "DEFAULT_RULES",
    "MAX_DELAY_S",
    "AlarmSettings",
    "LimitChange",
    "LimitRule",
    "RuleError",
    "check_rule_set",
    "compare_rules",
    "rules_from_dicts",
]

Direction = Literal["low", "high"]

MAX_DELAY_S = 60.0  # annunciation delay of a continuous parameter: 0 to 60 s
VALUE_KEYS = ("low", "high", "below_baseline_pct", "above_baseline_pct")


class RuleError(CoreError, ValueError):
    """A limit rule, or a set of rules, that clinicians would refuse.

    ``field`` says where (``low`` within one rule, ``rules[1].low`` in a request, empty when
    ``problem`` names the rules itself), ``problem`` what is wrong, ``label`` which limit in
    clinical words (``HR high limit (high priority)``); ``rules`` are the rules of a rule-set
    problem (the outer one first)."""

    def __init__(self, field: str, problem: str, label: str = "",
                 rules: tuple[LimitRule, ...] = ()) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field, self.problem, self.label, self.rules = field, problem, label, rules

    @property
    def clinical(self) -> str:
        """The problem for a person at the screen: no internal keys."""
        return f"{self.label}: {self.problem}" if self.label else self.problem

    def path_in(self, rules: Sequence[LimitRule], where: str) -> str:
        """Where a rule-set problem lies in ``rules`` as given: ``<where>[i].key`` of the
        first of its rules among them (``where`` alone when none is)."""
        ids = [r.id for r in rules]
        for rule in self.rules:
            if rule.id in ids:
                return f"{where}[{ids.index(rule.id)}].{rule.value_key}"
        return where


def _finite(field: str, value: Any, label: str) -> float:
    """``value`` as a float, refused unless a real, finite number (NaN, Infinity, bools,
    strings are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RuleError(field, f"must be a number (got {value!r})", label)
    try:
        number = float(value)
    except OverflowError:
        raise RuleError(field, "not a finite number (too large)", label) from None
    if not math.isfinite(number):
        raise RuleError(field, f"not a finite number ({number})", label)
    return number


@dataclass(frozen=True, slots=True)
class LimitRule:
    """``parameter`` below (``low``) or above (``high``) ``threshold`` for ``delay_s``.

    With ``baseline_pct`` set the threshold is relative: ``baseline_pct`` percent below
    (or above) the session baseline of the parameter, and the rule is idle without one.
    """

    parameter: str
    direction: Direction
    threshold: float | None
    priority: Priority
    delay_s: float = 0.0
    hysteresis: float | None = None  # None: the parameter's default
    baseline_pct: float | None = None

    def __post_init__(self) -> None:
        """Refuse what clinicians would: each number finite; an absolute limit inside the
        parameter's plausible range (docs/protocols.md#parameters), a baseline percentage above 0
        and below 100; a delay of 0 to 60 s, none for an intermittent parameter (NIBP); a
        hysteresis of at most a tenth of the plausible range. Raises :class:`RuleError`
        naming the field in its config form (``low``, ``delay_s``, ...)."""
        param = by_key(self.parameter) if isinstance(self.parameter, str) else None
        if param is None:
            raise RuleError("parameter", f"unknown parameter {self.parameter!r}")
        if self.direction not in ("low", "high"):
            raise RuleError("direction", f"must be 'low' or 'high', not {self.direction!r}")
        if not isinstance(self.priority, Priority):
            raise RuleError("priority", f"must be high, medium or low, not {self.priority!r}")
        if (self.threshold is None) == (self.baseline_pct is None):
            raise RuleError("", "a rule has either a threshold or a baseline_pct, not both")
        label, key = self.label, self.value_key
        value = _finite(key, self.threshold if self.baseline_pct is None else self.baseline_pct, label)
        if self.baseline_pct is None:
            low, high = param.plausible
            if not low <= value <= high:
                raise RuleError(key, f"must be from {low:g} to {high:g} {param.unit} (got {value:g})", label)
            object.__setattr__(self, "threshold", value)
        else:
            if not 0 < value < 100:
                raise RuleError(key, f"must be more than 0 and less than 100 % (got {value:g})", label)
            object.__setattr__(self, "baseline_pct", value)
        delay = _finite("delay_s", self.delay_s, label)
        if not param.continuous and delay:
            raise RuleError("delay_s", f"{self.parameter} is intermittent: it takes no annunciation delay",
                            label)
        if not 0 <= delay <= MAX_DELAY_S:
            raise RuleError("delay_s", f"must be from 0 to {MAX_DELAY_S:g} s (got {delay:g})", label)
        object.__setattr__(self, "delay_s", delay)
        if self.hysteresis is not None:
            band = _finite("hysteresis", self.hysteresis, label)
            most = (param.plausible[1] - param.plausible[0]) / 10
            if not 0 <= band <= most:
                raise RuleError("hysteresis", f"must be from 0 to {most:g} {param.unit} (got {band:g})",
                                label)
            object.__setattr__(self, "hysteresis", band)

    @property
    def relative(self) -> bool:
        return self.baseline_pct is not None

    @property
    def id(self) -> str:
        """Unique within a rule set: parameter, direction, absolute or relative, priority."""
        kind = "baseline" if self.relative else "limit"
        return f"{self.parameter}_{self.direction}_{kind}_{self.priority.label}"

    @property
    def code(self) -> str:
        """Alarm code; rules sharing a code form a ladder of priorities."""
        if self.relative:
            side = "BELOW" if self.direction == "low" else "ABOVE"
            return f"{self.parameter.upper()}_{side}_BASELINE"
        return f"{self.parameter.upper()}_{self.direction.upper()}"

    @property
    def value_key(self) -> str:
        """The key of the rule's limit in its config form: low, high, below/above_baseline_pct."""
        if self.relative:
            return f"{'below' if self.direction == 'low' else 'above'}_baseline_pct"
        return self.direction

    @property
    def value(self) -> float:
        """The limit as configured: the threshold, or the baseline percentage."""
        value = self.threshold if self.baseline_pct is None else self.baseline_pct
        assert value is not None
        return value

    @property
    def label(self) -> str:
        """The limit in clinical words: ``SpO2 low limit``, ``HR high limit (high priority)``,
        ``NIBP sys below baseline``; medium priority, the usual one, is not named."""
        param = by_key(self.parameter)
        name = param.label if param is not None else self.parameter
        if self.relative:
            text = f"{name} {'below' if self.direction == 'low' else 'above'} baseline"
        else:
            text = f"{name} {self.direction} limit"
        if self.priority is not Priority.MEDIUM:
            text += f" ({self.priority.label} priority)"
        return text

    def format(self, value: float) -> str:
        """A limit value with its unit: ``90 %``, ``150 /min``, ``20 %`` (of the baseline)."""
        param = by_key(self.parameter)
        unit = "%" if self.relative or param is None else param.unit
        return f"{value:g} {unit}"

    @property
    def band(self) -> float:
        if self.hysteresis is not None:
            return self.hysteresis
        param = by_key(self.parameter)
        assert param is not None
        return param.hysteresis

    def limit(self, baseline: float | None) -> float | None:
        """The effective threshold, or None for a relative rule without a baseline."""
        if self.baseline_pct is None:
            return self.threshold
        if baseline is None:
            return None
        factor = 1 - self.baseline_pct / 100 if self.direction == "low" else 1 + self.baseline_pct / 100
        return round(baseline * factor, 1)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"parameter": self.parameter, "priority": self.priority.label}
        if self.relative:
            out[f"{'below' if self.direction == 'low' else 'above'}_baseline_pct"] = self.baseline_pct
        else:
            out[self.direction] = self.threshold
        if self.delay_s:
            out["delay_s"] = self.delay_s
        if self.hysteresis is not None:
            out["hysteresis"] = self.hysteresis
        return out


def rules_from_dicts(items: Sequence[Any], where: str = "rules") -> tuple[LimitRule, ...]:
    """Build rules from their config form, e.g. ``{"parameter": "spo2", "low": 90,
    "priority": "medium", "delay_s": 15}``. Raises :class:`RuleError` naming the field as
    ``<where>[i].key`` (``rules[1].low: not a finite number (nan)``; index from 0)."""
    rules = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise RuleError(at, f"must be a rule table or object (got {type(item).__name__})")
        data = dict(item)
        try:
            if "parameter" not in data:
                raise RuleError("parameter", "required key is missing")
            parameter = data.pop("parameter")
            priority_text = data.pop("priority", "medium")
            if not isinstance(priority_text, str):
                raise RuleError("priority", f"must be high, medium or low, not {priority_text!r}")
            try:
                priority = Priority.parse(priority_text)
            except ValueError as exc:
                raise RuleError("priority", str(exc).removeprefix("priority ")) from None
            delay = data.pop("delay_s", 0)
            hysteresis = data.pop("hysteresis", None)
            forms = [k for k in VALUE_KEYS if k in data]
            if len(forms) != 1:
                raise RuleError("", "give exactly one of low, high, below_baseline_pct, above_baseline_pct")
            form = forms[0]
            value = data.pop(form)
            if value is None:
                raise RuleError(form, "must be a number (got None)")
            if data:
                raise RuleError(sorted(data)[0], "unknown key")
            direction: Direction = "low" if form in ("low", "below_baseline_pct") else "high"
            relative = form.endswith("_pct")
            rules.append(LimitRule(
                parameter=parameter, direction=direction,
                threshold=None if relative else value, priority=priority, delay_s=delay,
                hysteresis=hysteresis, baseline_pct=value if relative else None,
            ))
        except RuleError as exc:
            raise RuleError(f"{at}.{exc.field}" if exc.field else at, exc.problem, exc.label) from None
    ids = [r.id for r in rules]
    for j, r in enumerate(rules):
        if ids.index(r.id) != j:
            raise RuleError(f"{where}[{j}]", f"a second rule for the {r.label} "
                                             f"(the first is {where}[{ids.index(r.id)}])", r.label)
    return tuple(rules)


def check_rule_set(rules: Iterable[LimitRule], where: str | None = None) -> None:
    """Refuse a set of rules that clinicians would not use together:

    - per parameter and side, a higher priority's limit lies outside a lower one's: HR
      high (high priority) > 150 above high (medium) > 120; SpO2 low (high) < 85 below
      low (medium) < 90; for baseline rules a higher priority is a larger percentage;
    - each low limit of a parameter lies below each of its high limits.

    Raises :class:`RuleError` with a clinical ``problem`` and the two ``rules``; with
    ``where`` its field is ``<where>[i].key`` of the outer rule's index in ``rules``."""
    rules = tuple(rules)

    def refuse(outer: LimitRule, inner: LimitRule, problem: str) -> None:
        field = outer.value_key
        if where is not None:
            field = f"{where}[{rules.index(outer)}].{field}"
        raise RuleError(field, problem, rules=(outer, inner))

    groups: dict[tuple[str, str, bool], list[LimitRule]] = {}
    for r in rules:
        groups.setdefault((r.parameter, r.direction, r.relative), []).append(r)
    for (_, direction, relative), group in groups.items():
        ladder = sorted(group, key=lambda r: r.priority)
        for inner, outer in itertools.pairwise(ladder):
            if inner.priority == outer.priority:
                continue
            if relative:
                ok, word = outer.value > inner.value, "larger than"
            elif direction == "high":
                ok, word = outer.value > inner.value, "above"
            else:
                ok, word = outer.value < inner.value, "below"
            if not ok:
                refuse(outer, inner, f"{outer.label} {outer.format(outer.value)} must be {word} the "
                                     f"{inner.priority.label}-priority limit {inner.format(inner.value)}")
    for (param, direction, relative), lows in groups.items():
        if relative or direction != "low":
            continue
        for low in lows:
            for high in groups.get((param, "high", False), []):
                if not low.value < high.value:
                    refuse(low, high, f"{low.label} {low.format(low.value)} must be below the "
                                      f"{high.label} {high.format(high.value)}")


@dataclass(frozen=True, slots=True)
class LimitChange:
    """One changed value of one rule, with the profile's default for comparison."""

    rule: str  # rule id
    field: str  # low, high, below_baseline_pct, above_baseline_pct, delay_s, hysteresis
    old: float | None  # None: a rule the set did not have
    new: float | None
    default: float | None  # the profile's value; None: the profile has no such rule
    widens: bool  # less sensitive than before and than the profile's default
    text: str  # "SpO2 low limit 90 % → 88 %"

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "field": self.field, "old": self.old, "new": self.new,
                "default": self.default, "widens": self.widens, "text": self.text}


def _less_sensitive(field: str, a: float, b: float) -> bool:
    """Whether ``a`` alarms later than ``b``: a lower low limit, a higher high limit, a
    larger baseline percentage, a longer delay. (Hysteresis only delays the clearing.)"""
    if field == "hysteresis":
        return False
    if field == "low":
        return a < b
    return a > b


def compare_rules(before: Iterable[LimitRule], after: Iterable[LimitRule],
                  default: Iterable[LimitRule]) -> list[LimitChange]:
    """What changes from the rules ``before`` to ``after``, value by value, in clinical
    words. A change ``widens`` when it makes a limit less sensitive (low limit lowered,
    high limit raised, baseline percentage increased, delay lengthened) than it was and
    than the profile's ``default`` rule of the same id: those need a confirmation."""
    old_rules = {r.id: r for r in before}
    defaults = {r.id: r for r in default}
    out = []
    for rule in after:
        old, base = old_rules.get(rule.id), defaults.get(rule.id)
        fields: list[tuple[str, str, float | None, float | None, float | None]] = [
            (rule.value_key, rule.label, old.value if old else None, rule.value,
             base.value if base else None),
            ("delay_s", f"{rule.label} delay", old.delay_s if old else None, rule.delay_s,
             base.delay_s if base else None),
            ("hysteresis", f"{rule.label} hysteresis", old.band if old else None, rule.band,
             base.band if base else None),
        ]
        for field, label, was, now, dflt in fields:
            if was == now or now is None:
                continue
            fmt = (lambda v: f"{v:g} s") if field == "delay_s" else rule.format
            widens = (dflt is not None and _less_sensitive(field, now, dflt)
                      and (was is None or _less_sensitive(field, now, was)))
            text = f"{label} {fmt(was)} → {fmt(now)}" if was is not None else f"{label} {fmt(now)} (new)"
            if widens and dflt is not None and dflt != was:
                text += f" (profile default {fmt(dflt)})"
            out.append(LimitChange(rule.id, field, was, now, dflt, widens, text))
    return out


#: docs/clinical.md starting defaults for adults. ``pr`` carries the same limits as ``hr``: it
#: is the pulse of oximeter-only chairs and is judged only while no ECG heart rate arrives.
DEFAULT_RULES: tuple[LimitRule, ...] = rules_from_dicts([
    {"parameter": "spo2", "low": 90, "priority": "medium", "delay_s": 15},
    {"parameter": "spo2", "low": 85, "priority": "high", "delay_s": 10},
    *[
        rule
        for key in ("hr", "pr")
        for rule in (
            {"parameter": key, "high": 120, "priority": "medium", "delay_s": 10},
            {"parameter": key, "low": 50, "priority": "medium", "delay_s": 10},
            {"parameter": key, "high": 150, "priority": "high", "delay_s": 5},
            {"parameter": key, "low": 40, "priority": "high", "delay_s": 5},
        )
    ],
    {"parameter": "nibp_sys", "high": 180, "priority": "medium"},
    {"parameter": "nibp_sys", "low": 90, "priority": "medium"},
    {"parameter": "nibp_sys", "high": 200, "priority": "high"},
    {"parameter": "nibp_sys", "low": 80, "priority": "high"},
    {"parameter": "nibp_map", "low": 65, "priority": "high"},
    {"parameter": "nibp_sys", "below_baseline_pct": 20, "priority": "medium"},
])


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    """Bay-wide alarm behaviour (docs/clinical.md)."""

    audio_pause_s: float = 120.0
    latch_high: bool = True  # high-priority physiological alarms latch until acknowledged
    no_data_after_s: float = 30.0
    no_data_priority: Priority = Priority.MEDIUM
    sensor_off_delay_s: float = 10.0
    sensor_off_priority: Priority = Priority.MEDIUM
    device_offline_priority: Priority = Priority.MEDIUM
    nibp_overdue_grace_s: float = 300.0
    nibp_overdue_priority: Priority = Priority.LOW
    prompt_priority: Priority = Priority.LOW  # infusion overrun, observation complete
    notice_priority: Priority = Priority.MEDIUM  # readings lost (a gap in a device's seq)
    device_clock_priority: Priority = Priority.MEDIUM  # a device stamping its readings ahead
    clock_ok_after_s: float = 30.0  # no reading stamped ahead for this long: the clock is right
    # continuous data whose device time lags the monitor's clock by more than this is
    # DELAYED; lasting data_delayed_delay_s (monitor clock) it is a technical alarm. The
    # bay's default is its display's staleness limit (config [display] stale_after_s).
    data_delayed_after_s: float = 10.0
    data_delayed_delay_s: float = 5.0
    data_delayed_priority: Priority = Priority.MEDIUM
