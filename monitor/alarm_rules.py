"""Alarm rules as data: limit rules (absolute or relative to the session baseline) and the
settings of the technical alarms. Defaults follow CLINICAL.md; a site overrides them in the
configuration, a session in its protocol preset or on the chair page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from monitor.parameters import by_key
from monitor.records import Priority

__all__ = ["DEFAULT_RULES", "AlarmSettings", "LimitRule", "rules_from_dicts"]

Direction = Literal["low", "high"]


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
        param = by_key(self.parameter)
        if param is None:
            raise ValueError(f"unknown parameter {self.parameter!r}")
        if self.direction not in ("low", "high"):
            raise ValueError(f"direction must be 'low' or 'high', not {self.direction!r}")
        if (self.threshold is None) == (self.baseline_pct is None):
            raise ValueError("a rule has either a threshold or a baseline_pct, not both")
        if self.delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        if not param.continuous and self.delay_s:
            raise ValueError(f"{self.parameter} is intermittent: it takes no annunciation delay")
        if self.baseline_pct is not None and not 0 < self.baseline_pct < 100:
            raise ValueError("baseline_pct must be between 0 and 100")

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


def rules_from_dicts(items: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> tuple[LimitRule, ...]:
    """Build rules from their config form, e.g. ``{"parameter": "spo2", "low": 90,
    "priority": "medium", "delay_s": 15}``. Raises ValueError naming the problem."""
    rules = []
    for i, item in enumerate(items):
        data = dict(item)
        try:
            parameter = data.pop("parameter")
            priority = Priority.parse(data.pop("priority", "medium"))
            delay = float(data.pop("delay_s", 0))
            hysteresis = data.pop("hysteresis", None)
            forms = [k for k in ("low", "high", "below_baseline_pct", "above_baseline_pct") if k in data]
            if len(forms) != 1:
                raise ValueError(
                    "give exactly one of low, high, below_baseline_pct, above_baseline_pct"
                )
            form = forms[0]
            value = float(data.pop(form))
            if data:
                raise ValueError(f"unknown key(s) {', '.join(sorted(data))}")
            direction: Direction = "low" if form in ("low", "below_baseline_pct") else "high"
            relative = form.endswith("_pct")
            rules.append(LimitRule(
                parameter=parameter, direction=direction,
                threshold=None if relative else value, priority=priority, delay_s=delay,
                hysteresis=None if hysteresis is None else float(hysteresis),
                baseline_pct=value if relative else None,
            ))
        except KeyError as exc:
            raise ValueError(f"rule {i + 1}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"rule {i + 1}: {exc}") from None
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"more than one rule for {', '.join(dupes)}")
    return tuple(rules)


#: CLINICAL.md starting defaults for adults. ``pr`` carries the same limits as ``hr``: it
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
    """Bay-wide alarm behaviour (CLINICAL.md)."""

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
    # continuous data whose device time lags the monitor's clock by more than this is
    # DELAYED; lasting data_delayed_delay_s (monitor clock) it is a technical alarm. The
    # bay's default is its display's staleness limit (config [display] stale_after_s).
    data_delayed_after_s: float = 10.0
    data_delayed_delay_s: float = 5.0
    data_delayed_priority: Priority = Priority.MEDIUM
