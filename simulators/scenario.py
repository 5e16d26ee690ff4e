"""Scenarios as data: which chairs, on which transport, what happens to whom and when.

A scenario file (TOML, see ``simulators/scenarios/``)::

    name = "magnesium-hypotension"
    description = "..."
    duration_s = 1800
    seed = 42

    [[chairs]]
    id = "c01"
    transport = "serial"          # serial | mqtt | hl7
    protocol = "masimo"           # serial: a name of wire.registry.SERIAL_PROTOCOLS
    nibp_interval_s = 300
    baseline = { hr = 72, spo2 = 97, sys = 124, dia = 78 }
    events = [
      { at_s = 300, kind = "shift", parameter = "nibp_sys", delta = -40, duration_s = 900, ramp_s = 0 },
      { at_s = 600, kind = "sensor_off", duration_s = 30 },
      { at_s = 900, kind = "unplug", duration_s = 20 },
    ]

Event kinds: ``shift`` (a parameter moves by ``delta``, ramped over ``ramp_s``),
``sensor_off`` / ``no_sensor`` (SpO2 and PR lose their values and carry the flag),
``artifact`` (motion: jitter of ``noise`` on SpO2 and PR, ARTIFACT and MOTION flags),
``unplug`` (the device disappears from its transport: pty closed, MQTT connection dropped
without a goodbye so the broker sends the Last Will, MLLP connection closed) and
``broker_outage`` (MQTT only: the device cannot reach the broker and queues its messages,
sending them when it is back).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from monitor.parameters import by_key
from monitor.readings import QualityFlag
from monitor.validation import ConfigError, Name, describe_errors
from simulators.patient import Effect, PatientModel
from wire.registry import SERIAL_PROTOCOLS

__all__ = ["ChairScript", "ChairSpec", "EventSpec", "Outage", "Scenario", "ScenarioSpec", "build",
           "load_scenario"]

SCENARIOS = Path(__file__).parent / "scenarios"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventSpec(_Model):
    at_s: float = Field(ge=0)
    kind: Literal["shift", "sensor_off", "no_sensor", "artifact", "unplug", "broker_outage"]
    duration_s: float = Field(gt=0)
    parameter: str | None = None
    delta: float = 0.0
    ramp_s: float = Field(30.0, ge=0)
    noise: float = Field(6.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> EventSpec:
        known = self.parameter == "nibp" or (self.parameter is not None and by_key(self.parameter))
        if self.kind == "shift" and not known:
            raise ValueError(f"a shift needs a known parameter (got {self.parameter!r})")
        return self


class ChairSpec(_Model):
    id: Name
    transport: Literal["serial", "mqtt", "hl7"] = "mqtt"
    protocol: Literal[SERIAL_PROTOCOLS] = "chairside"  # type: ignore[valid-type]  # the registry's
    device: str = ""
    seed: int | None = None
    nibp_interval_s: float = Field(300, gt=30)
    baseline: dict[Literal["hr", "spo2", "sys", "dia"], float] = Field(default_factory=dict)
    events: tuple[EventSpec, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> ChairSpec:
        for i, e in enumerate(self.events):
            if e.kind == "broker_outage" and self.transport != "mqtt":
                raise ValueError(f"events[{i}]: broker_outage needs the mqtt transport")
        return self


class ScenarioSpec(_Model):
    name: str
    description: str = ""
    duration_s: float = Field(3600, gt=0)
    seed: int = 1
    chairs: tuple[ChairSpec, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Outage:
    kind: str  # unplug | broker_outage
    start_s: float
    duration_s: float

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.start_s + self.duration_s


@dataclass(frozen=True)
class ChairScript:
    chair: str
    transport: str
    protocol: str
    device: str
    model: PatientModel
    outages: tuple[Outage, ...]

    def outage(self, t: float) -> str | None:
        return next((o.kind for o in self.outages if o.covers(t)), None)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    chairs: tuple[ChairScript, ...]


_OXIMETER = ("spo2", "pr")


def _effects(e: EventSpec) -> list[Effect]:
    if e.kind == "shift":
        return [Effect(e.at_s, e.duration_s, e.parameter or "*", e.delta, e.ramp_s)]
    if e.kind in ("sensor_off", "no_sensor"):
        flag = QualityFlag.SENSOR_OFF if e.kind == "sensor_off" else QualityFlag.NO_SENSOR
        return [Effect(e.at_s, e.duration_s, p, flags=int(flag), no_value=True, ramp_s=0)
                for p in _OXIMETER]
    if e.kind == "artifact":
        flags = int(QualityFlag.ARTIFACT | QualityFlag.MOTION)
        return [Effect(e.at_s, e.duration_s, p, flags=flags, noise=e.noise, ramp_s=0) for p in _OXIMETER]
    return []


def build(spec: ScenarioSpec) -> Scenario:
    chairs = []
    for i, c in enumerate(spec.chairs):
        effects = [eff for e in c.events for eff in _effects(e)]
        base = {"hr": 74.0, "spo2": 97.5, "sys": 124.0, "dia": 78.0} | dict(c.baseline)
        model = PatientModel(seed=c.seed if c.seed is not None else spec.seed * 1000 + i,
                             nibp_interval_s=c.nibp_interval_s, effects=effects, **base)
        outages = tuple(Outage(e.kind, e.at_s, e.duration_s) for e in c.events
                        if e.kind in ("unplug", "broker_outage"))
        chairs.append(ChairScript(c.id, c.transport, c.protocol, c.device or f"sim-{c.id}",
                                  model, outages))
    return Scenario(spec.name, spec.description, spec.duration_s, tuple(chairs))


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file; a bare name means a shipped scenario."""
    path = Path(path)
    if not path.exists() and (SCENARIOS / f"{path.name}.toml").exists():
        path = SCENARIOS / f"{path.name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read scenario: {exc}") from None
    try:
        return build(ScenarioSpec.model_validate(data))
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, str(path))) from None
