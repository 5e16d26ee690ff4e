"""A plausible patient for one chair, as a pure function of simulated time.

Continuous values (HR, PR, SpO2) at 1 Hz: a baseline, breathing-linked variability, a slow
random drift and measurement noise; NIBP once per cuff cycle, the reading appearing a
realistic cuff delay (30-40 s) after the cycle starts. Scenario effects shift a parameter
(ramping in and out) or set quality flags for a stretch of time. Deterministic for a seed:
the same seed and times give the same values, whatever order they are asked in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Effect", "PatientModel", "Sample"]


@dataclass(frozen=True, slots=True)
class Effect:
    """From ``start_s`` for ``duration_s`` seconds (simulated, from the model's start):
    add ``delta`` to ``parameter`` (ramped over ``ramp_s``), or set ``flags`` and drop the
    values of ``parameter`` (``"*"``: every parameter) when ``no_value`` is set."""

    start_s: float
    duration_s: float
    parameter: str = "*"
    delta: float = 0.0
    ramp_s: float = 30.0
    flags: int = 0
    no_value: bool = False
    noise: float = 0.0  # extra jitter (motion artifact), +- this much

    def weight(self, t: float) -> float:
        """0..1: how much of the effect applies at ``t`` seconds."""
        end = self.start_s + self.duration_s
        if t < self.start_s or t >= end:
            return 0.0
        if self.ramp_s <= 0:
            return 1.0
        return min(1.0, (t - self.start_s) / self.ramp_s, (end - t) / self.ramp_s)

    def covers(self, parameter: str) -> bool:
        return self.parameter in ("*", parameter) or (
            self.parameter == "nibp" and parameter.startswith("nibp_"))


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the model's start
    values: dict[str, float | None]
    flags: int


@dataclass
class PatientModel:
    seed: int
    hr: float = 74.0
    spo2: float = 97.5
    sys: float = 124.0
    dia: float = 78.0
    nibp_interval_s: float = 900.0
    cuff_delay_s: float = 35.0
    effects: list[Effect] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        # Personal variation of the baseline and the phases of the slow rhythms.
        self.hr += float(rng.normal(0, 6))
        self.spo2 = float(np.clip(self.spo2 + rng.normal(0, 1), 94, 99.5))
        self.sys += float(rng.normal(0, 10))
        self.dia += float(rng.normal(0, 6))
        self._phase = rng.uniform(0, 2 * math.pi, size=4)
        self._breath_hz = float(rng.uniform(0.2, 0.3))

    def _noise(self, t: float, channel: int) -> float:
        """Deterministic noise in [-1, 1] for (seed, second, channel)."""
        rng = np.random.default_rng((self.seed, int(t * 10), channel))
        return float(rng.uniform(-1, 1))

    def _shift(self, parameter: str, t: float) -> float:
        total = 0.0
        for i, e in enumerate(self.effects):
            if e.covers(parameter) and (w := e.weight(t)):
                total += e.delta * w + (e.noise * self._noise(t, 10 + i) if e.noise else 0.0)
        return total

    def _state(self, t: float) -> tuple[int, set[str]]:
        flags, silenced = 0, set()
        for e in self.effects:
            if (e.flags or e.no_value) and e.start_s <= t < e.start_s + e.duration_s:
                flags |= e.flags
                if e.no_value:
                    silenced.add(e.parameter)
        return flags, silenced

    def sample(self, t: float) -> Sample:
        p = self._phase
        breath = math.sin(2 * math.pi * self._breath_hz * t + p[0])
        drift = 3 * math.sin(2 * math.pi * t / 900 + p[1]) + 2 * math.sin(2 * math.pi * t / 2700 + p[2])
        hr = self.hr + drift + 2.5 * breath + 1.2 * self._noise(t, 0) + self._shift("hr", t)
        pr = hr + 1.5 * self._noise(t, 1) + self._shift("pr", t)
        spo2 = self.spo2 + 0.4 * math.sin(2 * math.pi * t / 600 + p[3]) + 0.5 * self._noise(t, 2) \
            + self._shift("spo2", t)
        values: dict[str, float | None] = {
            "hr": round(hr), "pr": round(pr), "spo2": round(min(100.0, max(50.0, spo2))),
        }
        flags, silenced = self._state(t)
        for key in values:
            if "*" in silenced or key in silenced:
                values[key] = None
        return Sample(t, values, flags)

    def nibp(self, t: float) -> dict[str, float] | None:
        """The NIBP reading that completes at ``t`` (to the second), if one does."""
        cycle = math.floor((t - self.cuff_delay_s) / self.nibp_interval_s)
        done = cycle * self.nibp_interval_s + self.cuff_delay_s
        if cycle < 0 or not (done <= t < done + 1):
            return None
        start = cycle * self.nibp_interval_s
        sys_shift = self._shift("nibp_sys", start)
        dia_shift = self._shift("nibp_dia", start) or 0.5 * sys_shift  # dia follows sys halfway
        sys = self.sys + 4 * self._noise(start, 3) + sys_shift
        dia = self.dia + 3 * self._noise(start, 4) + dia_shift
        return {"nibp_sys": round(sys), "nibp_dia": round(dia),
                "nibp_map": round(dia + (sys - dia) / 3)}

    def run(self, start_s: float, stop_s: float, step_s: float = 1.0) -> Iterator[Sample]:
        t = start_s
        while t < stop_s:
            sample = self.sample(t)
            bp = self.nibp(t)
            if bp:
                sample.values.update(bp)
            yield sample
            t += step_s

