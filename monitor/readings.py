"""Readings: what every adapter hands to the core, and why the core may refuse one.

A :class:`Reading` is a NamedTuple on purpose: it is immutable, cheap to build at 1 Hz x
5 parameters x 48 chairs, and its field order is the row the store writes, so a batch of
readings goes to SQLite's ``executemany`` without conversion.
"""

from __future__ import annotations

import math
import numbers
from enum import IntFlag, StrEnum
from typing import NamedTuple

from monitor.parameters import by_key

__all__ = ["QualityFlag", "Reading", "RejectReason", "describe", "flag_names", "manual_nibp", "normalise",
           "parse_flags"]


class QualityFlag(IntFlag):
    """Signal-quality and device-state flags (docs/protocols.md#mqtt names, plus a few
    that the serial dialects and HL7 carry)."""

    NONE = 0
    SENSOR_OFF = 1 << 0
    NO_SENSOR = 1 << 1
    LOW_PERFUSION = 1 << 2
    PULSE_SEARCH = 1 << 3
    INTERFERENCE = 1 << 4
    LOW_SIGNAL_QUALITY = 1 << 5
    ARTIFACT = 1 << 6
    LOW_BATTERY = 1 << 7
    DEFECTIVE_SENSOR = 1 << 8
    AMBIENT_LIGHT = 1 << 9
    UNRECOGNISED_SENSOR = 1 << 10
    MOTION = 1 << 11
    LOSS_OF_PULSE = 1 << 12
    DEMO = 1 << 13  # device in demo mode (HL7 OBX-8 DEMO): not a patient value
    MANUAL = 1 << 14  # entered by a nurse (a manual NIBP), not measured by a connected device
    CLOCK_SKEW = 1 << 15  # stamped ahead of the monitor's clock by more than [ingest] clock_skew_s


CLOCK_SKEW = int(QualityFlag.CLOCK_SKEW)

#: Flags that mean the sensor is not measuring the patient at all.
SENSOR_MISSING = QualityFlag.SENSOR_OFF | QualityFlag.NO_SENSOR | QualityFlag.DEFECTIVE_SENSOR


def flag_names(flags: int) -> list[str]:
    return [f.name for f in QualityFlag if f and flags & f and f.name]


_OWN_FLAGS = frozenset({"MANUAL", "CLOCK_SKEW"})  # set by Chairside itself, never by a device


def parse_flags(names: list[str] | tuple[str, ...]) -> int:
    """Flag names (from a device) to a bitmask. Raises ValueError naming the first unknown
    flag; ``MANUAL`` is Chairside's own mark of a nurse's entry, never a device's."""
    mask = 0
    for name in names:
        if name in _OWN_FLAGS:
            raise ValueError(f"flag {name!r} is Chairside's own mark, not sent by a device")
        try:
            mask |= QualityFlag[name]
        except KeyError:
            raise ValueError(f"unknown flag {name!r}") from None
    return mask


class Reading(NamedTuple):
    chair: str
    parameter: str  # a key of monitor.parameters
    value: float | None  # None: the device reported no value (e.g. sensor off)
    device_time: float  # UNIX seconds, from the device
    receive_time: float  # UNIX seconds, when Chairside took it in
    device: str
    seq: int | None = None
    flags: int = 0  # QualityFlag bits

    @property
    def has_value(self) -> bool:
        return self.value is not None


class RejectReason(StrEnum):
    """Why the core refused a reading. Adapters add their own reasons for frames."""

    UNKNOWN_CHAIR = "unknown_chair"
    UNKNOWN_PARAMETER = "unknown_parameter"
    NOT_FINITE = "not_finite"  # NaN or infinite
    NOT_A_NUMBER = "not_a_number"  # not a number at all
    IMPLAUSIBLE = "implausible"  # outside the parameter's plausible range
    FUTURE_TIME = "future_time"  # device time more than the allowed skew ahead
    TOO_OLD = "too_old"  # device time older than the ring buffer reaches
    BAD_TIME = "bad_time"  # device time not a finite number
    BAD_FIELD = "bad_field"  # chair, device, seq or flags of the wrong type


def check_value(value: object) -> RejectReason | None:
    """The value part of validation, shared by the core and the parsers."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers pass
        return RejectReason.NOT_A_NUMBER
    if not math.isfinite(value):
        return RejectReason.NOT_FINITE
    return None


def normalise(r: Reading) -> tuple[Reading, RejectReason | None]:
    """The slow path for readings with fields that are not plain Python types (numpy
    numbers, ints for times): convert what can be converted, refuse the rest, so that only
    plain floats, ints and strings go on to the buffers and the store."""
    if (reason := check_value(r.value)) is not None:
        return r, reason
    if r.device_time is None or check_value(r.device_time) is not None:
        return r, RejectReason.BAD_TIME
    if r.receive_time is None or check_value(r.receive_time) is not None:
        return r, RejectReason.BAD_TIME
    integral = (r.seq is None or isinstance(r.seq, numbers.Integral)) and isinstance(
        r.flags, numbers.Integral) and not isinstance(r.seq, bool)
    if not integral or not isinstance(r.device, str) or not isinstance(r.chair, str) \
            or not isinstance(r.parameter, str):
        return r, RejectReason.BAD_FIELD
    return Reading(
        str(r.chair), str(r.parameter), None if r.value is None else float(r.value),
        float(r.device_time), float(r.receive_time), str(r.device),
        None if r.seq is None else int(r.seq), int(r.flags),
    ), None


def describe(r: Reading) -> str:
    return (f"chair={r.chair!r} parameter={r.parameter!r} value={r.value!r} "
            f"device_time={r.device_time!r} device={r.device!r} seq={r.seq!r}")


def manual_nibp(chair: str, sys: object, dia: object, mean: object, now: float,
                device: str) -> list[Reading]:
    """The readings of an NIBP a nurse enters: sys, dia and MAP at ``now``, flagged
    ``MANUAL``. MAP, when None, is (sys + 2 dia) / 3, rounded. Raises ValueError naming
    the first value that is not a plausible number (ranges of docs/protocols.md#parameters)."""
    values = {"nibp_sys": sys, "nibp_dia": dia, "nibp_map": mean}
    for key, value in values.items():
        if value is None and key == "nibp_map":
            continue
        param = by_key(key)
        assert param is not None
        low, high = param.plausible
        if value is None or check_value(value) or not param.is_plausible(float(value)):  # type: ignore[arg-type]
            raise ValueError(f"{param.label} must be a number from {low:g} to {high:g} {param.unit}, "
                             f"not {value!r}")
    s, d = float(sys), float(dia)  # type: ignore[arg-type]
    if d >= s:
        raise ValueError(f"diastolic ({d:g}) must be below systolic ({s:g})")
    m = round((s + 2 * d) / 3) if mean is None else float(mean)  # type: ignore[arg-type]
    return [Reading(chair, key, float(v), now, now, device, None, int(QualityFlag.MANUAL))
            for key, v in (("nibp_sys", s), ("nibp_dia", d), ("nibp_map", m))]
