"""NEWS2 (Royal College of Physicians, 2017) for the parts a bedside monitor measures.

Respiration rate, temperature, consciousness and supplemental oxygen are not measured here,
so every score is *partial*: the missing parts are listed, never counted as 0 silently.

Rounding rule (docs/news2.md): the chart's bands are whole numbers, so a value is first
rounded to the whole number a nurse would chart, **half up** (90.5 -> 91, 90.4 -> 90;
never Python's half-to-even ``round``), and that whole number is banded. Every ``score_*``
function applies the rule itself, so each agrees with :func:`news2`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["NOT_MEASURED", "News2", "chart_value", "news2", "score_pulse", "score_spo2",
           "score_systolic"]

NOT_MEASURED = ("respiration_rate", "temperature", "consciousness", "supplemental_oxygen")


def chart_value(value: float) -> int:
    """The whole number a nurse charts: rounded half up (90.5 -> 91, 90.49 -> 90)."""
    return math.floor(value + 0.5)


def score_spo2(spo2: float) -> int:
    """SpO2 scale 1: <=91 -> 3, 92-93 -> 2, 94-95 -> 1, >=96 -> 0 (of the charted value)."""
    spo2 = chart_value(spo2)
    if spo2 <= 91:
        return 3
    if spo2 <= 93:
        return 2
    if spo2 <= 95:
        return 1
    return 0


def score_systolic(sys: float) -> int:
    """<=90 -> 3, 91-100 -> 2, 101-110 -> 1, 111-219 -> 0, >=220 -> 3 (of the charted value)."""
    sys = chart_value(sys)
    if sys <= 90:
        return 3
    if sys <= 100:
        return 2
    if sys <= 110:
        return 1
    if sys <= 219:
        return 0
    return 3


def score_pulse(pulse: float) -> int:
    """<=40 -> 3, 41-50 -> 1, 51-90 -> 0, 91-110 -> 1, 111-130 -> 2, >=131 -> 3 (of the
    charted value)."""
    pulse = chart_value(pulse)
    if pulse <= 40:
        return 3
    if pulse <= 50:
        return 1
    if pulse <= 90:
        return 0
    if pulse <= 110:
        return 1
    if pulse <= 130:
        return 2
    return 3


@dataclass(frozen=True, slots=True)
class News2:
    total: int  # of the parts scored
    components: dict[str, int]  # "spo2", "systolic", "pulse" -> points, for those present
    missing: tuple[str, ...]  # monitor parameters without a current value
    partial: bool = True  # always: NOT_MEASURED parts are never scored here

    @property
    def not_measured(self) -> tuple[str, ...]:
        return NOT_MEASURED

    @property
    def response(self) -> str:
        """'emergency' (>=7), 'urgent' (>=5 or a single 3), 'low' (1-4), 'none' (0)
        -- from the parts measured; the real score can only be higher."""
        if self.total >= 7:
            return "emergency"
        if self.total >= 5 or 3 in self.components.values():
            return "urgent"
        return "low" if self.total else "none"

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total, "partial": self.partial, "components": dict(self.components),
            "missing": list(self.missing), "not_measured": list(NOT_MEASURED),
            "response": self.response,
        }


def news2(spo2: float | None, systolic: float | None, pulse: float | None) -> News2:
    """Partial NEWS2 from the latest values (None: no current value)."""
    parts = {"spo2": (spo2, score_spo2), "systolic": (systolic, score_systolic),
             "pulse": (pulse, score_pulse)}
    components = {k: fn(v) for k, (v, fn) in parts.items() if v is not None}
    missing = tuple(k for k, (v, _) in parts.items() if v is None)
    return News2(sum(components.values()), components, missing)
