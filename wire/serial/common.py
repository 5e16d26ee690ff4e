"""What the serial dialects share: quoting for error messages, "no value" dashes, numbers
in and out, and the device clock as the dialects print it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from monitor.seam import ParseError
from wire.numbers import to_float

__all__ = ["HEX", "TIME", "device_clock", "display_value", "int_field", "is_dashes", "q", "upper",
           "value"]

HEX = re.compile(r"[0-9A-Fa-f]{1,16}", re.ASCII)
TIME = re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
_QUOTE_CHARS = 48


def q(text: str) -> str:
    """A short quote of a line or field for an error message."""
    return repr(text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "...")


def is_dashes(text: str) -> bool:
    """``---``, ``--.-``, ``--.--``, ``+--``: the dialects' way of saying "no value"."""
    return "-" in text and not text.strip("-.+")


def value(text: str, what: str, proto: str, line: str) -> float | None:
    """A measurement field: dashes -> None, a number -> float, anything else -> bad_value."""
    if is_dashes(text):
        return None
    number = to_float(text)
    if number is None:
        raise ParseError("bad_value", f"{proto}: {what} is not a number: {q(text)} in {q(line)}")
    return number


def upper(text: str) -> str:
    """Upper case for ASCII only (``"\u017f".upper()`` is ``"S"``: no such surprises)."""
    return text.upper() if text.isascii() else text


def display_value(text: str) -> float | None:
    """A display-only field: a number, else None (dashes and anything odd alike)."""
    return to_float(text.removesuffix("%"))


def int_field(number: Any, what: str, width: int) -> str:
    """A value as a device prints it: rounded to a whole number, zero-padded to ``width``
    digits (``97`` -> ``097``); None -> ``width`` dashes. ValueError when it does not fit."""
    if number is None:
        return "-" * width
    whole = round(float(number))
    if not 0 <= whole < 10**width:
        raise ValueError(f"{what} {number!r} does not fit {width} digits")
    return f"{whole:0{width}d}"


def device_clock(extra: dict[str, Any], time: float | None, pattern: str, what: str) -> str:
    """The device's clock text: ``extra["device_local_time"]`` as parsed, else ``time``
    (UNIX seconds) as a UTC clock in ``pattern``."""
    local = extra.get("device_local_time")
    if local is not None:
        return str(local)
    if time is None:
        raise ValueError(f"{what}: a line needs extra['device_local_time'] or a time")
    return datetime.fromtimestamp(time, UTC).strftime(pattern)
