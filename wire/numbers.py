"""Decimal text in and out, as the dialects write numbers: plain decimals, never an exponent,
never ``nan`` or ``inf``."""

from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal

__all__ = ["DECIMAL", "format_decimal", "to_float"]

#: A plain decimal number (HL7 NM, the serial dialects' values): sign, digits, one point.
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def to_float(text: str) -> float | None:
    """A plain decimal number, or None if ``text`` is not one (or overflows)."""
    if not DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def format_decimal(value: object) -> str:
    """A finite number as the shortest plain decimal that reads back as the same float
    (``72``, ``36.6``, ``0.00001``). Raises ValueError for anything else (bool, NaN...)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers pass
        raise ValueError(f"not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return format(Decimal(repr(number)), "f")
