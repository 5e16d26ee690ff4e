"""Nonin ASCII real-time output (7500, Avant 9600 and relatives; 9600 8N2, one line a second):
``SPO2=XXX HR=YYY``, ``---`` when there is no value, optionally followed by a flag character.
"""

from __future__ import annotations

import re

from monitor.seam import Frame, ParseError
from wire.dialect import Dialect
from wire.serial.common import TIME, int_field, q, upper, value

__all__ = ["DIALECT", "format_nonin", "parse_nonin"]

_MARKER = re.compile(r"[*A-Za-z]{1,3}", re.ASCII)


def parse_nonin(line: str) -> Frame:
    """One line of Nonin ASCII real-time output (7500, Avant 9600 and relatives).

    ``SPO2=XXX HR=YYY`` (``---`` for no value), optionally preceded by the ``HH:MM:SS``
    some models print (8600V, 9847) and optionally followed by a marker: ``*`` (event
    marker, also written straight after the HR value), ``F`` (Avant 9600 / BT4000 with DIP
    switch 8 up: fast-responding values), ``B`` (9847: a breath was detected), or another
    token of up to three letters. Frame contents:

    - values: ``spo2`` and ``pr`` (the Nonin HR is the oximeter's pulse rate), None for ``---``.
    - flags: none. No documented Nonin marker means sensor off; ``---`` alone does not say
      whether the sensor is off or the oximeter is still searching, so no flag is guessed.
    - extra: ``marker`` (as written) when there is one, ``event`` True when it holds ``*``,
      ``device_local_time`` when the line starts with a time.

    Anything else is ``malformed`` (the power-up header line of these devices included: its
    layout is not documented well enough to recognise it); a value that is neither a number
    nor dashes is ``bad_value``.
    """
    tokens = line.split()
    extra: dict[str, object] = {}
    if tokens and TIME.fullmatch(tokens[0]):
        extra["device_local_time"] = tokens.pop(0)
    if len(tokens) not in (2, 3) or not upper(tokens[0]).startswith("SPO2=") \
            or not upper(tokens[1]).startswith("HR="):
        raise ParseError("malformed", f"nonin: expected 'SPO2=XXX HR=YYY [flag]': {q(line)}")
    hr = tokens[1][3:]
    marker = tokens[2] if len(tokens) == 3 else ""
    if hr.endswith("*") and len(hr) > 1:  # event marker written straight after the value
        hr, marker = hr[:-1], "*" + marker
    if marker and not _MARKER.fullmatch(marker):
        raise ParseError("malformed", f"nonin: unexpected trailing token {q(marker)} in {q(line)}")
    values = {"spo2": value(tokens[0][5:], "SPO2", "nonin", line),
              "pr": value(hr, "HR", "nonin", line)}
    if marker:
        extra["marker"] = marker
        extra["event"] = "*" in marker
    return Frame(values=values, extra=extra)


def format_nonin(frame: Frame) -> str:
    """A Nonin line (no terminator): ``SPO2=XXX HR=YYY``, values rounded to whole numbers,
    ``---`` for None or a missing key; ``extra["device_local_time"]`` (``HH:MM:SS``) before
    and ``extra["marker"]`` after, when there. Flags are left out: Nonin ASCII has none."""
    unknown = set(frame.values) - {"spo2", "pr"}
    if unknown:
        raise ValueError(f"nonin: no field for {sorted(unknown)}")
    tokens = [f"SPO2={int_field(frame.values.get('spo2'), 'SPO2', 3)}",
              f"HR={int_field(frame.values.get('pr'), 'HR', 3)}"]
    local = frame.extra.get("device_local_time")
    if local is not None:
        if not TIME.fullmatch(str(local)):
            raise ValueError(f"nonin: device_local_time must be HH:MM:SS, got {local!r}")
        tokens.insert(0, str(local))
    marker = frame.extra.get("marker")
    if marker:
        if not _MARKER.fullmatch(marker):
            raise ValueError(f"nonin: marker must be 1-3 of '*' and letters, got {marker!r}")
        tokens.append(marker)
    return " ".join(tokens)


DIALECT = Dialect(
    name="nonin",
    transport="serial",
    title="Nonin ASCII (7500, Avant 9600)",
    parse=parse_nonin,
    format=format_nonin,
    parameters=frozenset({"spo2", "pr"}),
    samples=("SPO2=097 HR=072", "SPO2=--- HR=---", "SPO2=096 HR=071 F"),  # synthetic, per the manuals
)
