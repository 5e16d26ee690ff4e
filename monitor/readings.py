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

__all__ = ["QualityFlag", "Reading", "RejectReason", "flag_names", "parse_flags"]


class QualityFlag(IntFlag):
    """Signal-quality and device-state flags (PROTOCOLS.md section 2 names, plus a few
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


#: Flags that mean the sensor is not measuring the patient at all.
SENSOR_MISSING = QualityFlag.SENSOR_OFF | QualityFlag.NO_SENSOR | QualityFlag.DEFECTIVE_SENSOR


def flag_names(flags: int) -> list[str]:
    return [f.name for f in QualityFlag if f and flags & f and f.name]


def parse_flags(names: list[str] | tuple[str, ...]) -> int:
    """Flag names to a bitmask. Raises ValueError naming the first unknown flag."""
    mask = 0
    for name in names:
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
