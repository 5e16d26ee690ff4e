"""Nellcor trend output (N-595, N-600x style; 9600 8N1): a header line naming the model, a
column line ``TIME %SPO2 BPM PA Status``, then rows such as ``12-NOV-25 14:00:05 97 72 50``
followed by zero or more status codes. Header and column lines repeat periodically.
"""

from __future__ import annotations

import re

from monitor.readings import QualityFlag
from monitor.seam import Frame, ParseError
from wire.dialect import Dialect
from wire.serial.common import TIME, device_clock, int_field, q, upper, value

__all__ = ["COLUMNS", "DIALECT", "HEADER", "STATUS_FLAGS", "format_nellcor", "parse_nellcor"]

#: The lines a simulated N-600x repeats every so often (they carry no reading).
HEADER = "N-600x VERSION 1.2.3.4 CRC:1A2B SpO2 Limit: 85-100% PR Limit: 50-170bpm"
COLUMNS = "TIME %SPO2 BPM PA Status"
_CLOCK = "%d-%b-%y %H:%M:%S"

_DATE = re.compile(r"[0-9]{2}-[A-Za-z]{3}-[0-9]{2}", re.ASCII)
_MODEL = re.compile(r"N-?[0-9]{3,4}[A-Z]{0,2}", re.ASCII)
_CODE = re.compile(r"[A-Za-z]{2}", re.ASCII)
# First words of the lines that carry no reading: the model header ("N-600x VERSION ...",
# "Nellcor N-595 ..."), the column line ("TIME %SpO2 BPM PA Status") and the patient-mode
# line some models print under the header ("ADULT 0SAT-S").
_NON_DATA = {"TIME", "NELLCOR", "ADULT", "NEONATE"}

#: Nellcor status codes -> quality flags. Codes mapped to 0 (alarm off/silenced, limit
#: alarms) carry no signal-quality meaning; every code is kept in ``extra["status"]``.
STATUS_FLAGS: dict[str, QualityFlag] = {
    "SO": QualityFlag.SENSOR_OFF,
    "SD": QualityFlag.NO_SENSOR,
    "LP": QualityFlag.LOSS_OF_PULSE,
    "MO": QualityFlag.MOTION,
    "PS": QualityFlag.PULSE_SEARCH,
    "LB": QualityFlag.LOW_BATTERY,
    "AO": QualityFlag.NONE,
    "AS": QualityFlag.NONE,
    "PH": QualityFlag.NONE,
    "PL": QualityFlag.NONE,
    "SH": QualityFlag.NONE,
    "SL": QualityFlag.NONE,
}


def parse_nellcor(line: str) -> Frame | None:
    """One line of Nellcor trend output (N-595, N-600x style).

    Header, patient-mode, column and blank lines return None. A data row is
    ``DD-MON-YY HH:MM:SS SPO2 BPM PA`` then zero or more two-letter status codes. Frame
    contents:

    - values: ``spo2`` and ``pr`` (BPM), None for ``---``.
    - flags: from the status codes (:data:`STATUS_FLAGS`).
    - extra: ``device_local_time`` (as written, e.g. ``"12-NOV-25 14:00:05"``),
      ``pulse_amplitude`` (float or None), ``status`` (list of every code, in line order).

    Fewer than five fields, or a trailing field that is not a two-letter code, is
    ``malformed``; an unknown code is ``unknown_status`` (codes are upper case, as printed).
    """
    tokens = line.split()
    if not tokens:
        return None
    first = upper(tokens[0])
    if first in _NON_DATA or _MODEL.fullmatch(first):
        return None
    if not _DATE.fullmatch(tokens[0]) or len(tokens) < 2 or not TIME.fullmatch(tokens[1]):
        raise ParseError("malformed", f"nellcor: not a header, column line or data row: {q(line)}")
    if len(tokens) < 5:
        raise ParseError("malformed", f"nellcor: expected TIME %SPO2 BPM PA [status...]: {q(line)}")
    values = {"spo2": value(tokens[2], "%SPO2", "nellcor", line),
              "pr": value(tokens[3], "BPM", "nellcor", line)}
    pulse_amplitude = value(tokens[4], "PA", "nellcor", line)
    flags = 0
    status: list[str] = []
    for code in tokens[5:]:
        if not _CODE.fullmatch(code):
            raise ParseError("malformed", f"nellcor: too many fields or bad status {q(code)} in {q(line)}")
        if code not in STATUS_FLAGS:
            raise ParseError("unknown_status", f"nellcor: unknown status code {q(code)} in {q(line)}")
        flags |= STATUS_FLAGS[code]
        status.append(code)
    extra = {"device_local_time": f"{tokens[0]} {tokens[1]}",
             "pulse_amplitude": pulse_amplitude, "status": status}
    return Frame(values=values, flags=int(flags), extra=extra)


def format_nellcor(frame: Frame) -> str:
    """A Nellcor data row (no terminator): the device clock, SpO2, BPM and pulse amplitude
    (``extra["pulse_amplitude"]``) rounded to whole numbers or ``---``, then the status
    codes: ``extra["status"]`` as given, plus a code for each flag none of them carries."""
    unknown = set(frame.values) - {"spo2", "pr"}
    if unknown:
        raise ValueError(f"nellcor: no column for {sorted(unknown)}")
    clock = device_clock(frame.extra, frame.time, _CLOCK, "nellcor").upper()
    codes = list(frame.extra.get("status", ()))
    for code in codes:
        if code not in STATUS_FLAGS:
            raise ValueError(f"nellcor: unknown status code {code!r}")
    carried = 0
    for code in codes:
        carried |= STATUS_FLAGS[code]
    for code, flag in STATUS_FLAGS.items():
        if flag and frame.flags & flag and not carried & flag:
            codes.append(code)
            carried |= flag
    fields = [clock, _column(frame.values.get("spo2"), "%SPO2"), _column(frame.values.get("pr"), "BPM"),
              _column(frame.extra.get("pulse_amplitude"), "PA")]
    return " ".join([*fields, *codes])


def _column(number: float | None, what: str) -> str:
    text = int_field(number, what, 3)  # range check; the trend columns are not zero-padded
    return text if number is None else str(int(text))


DIALECT = Dialect(
    name="nellcor",
    transport="serial",
    title="Nellcor trend output (N-595, N-600x)",
    parse=parse_nellcor,
    format=format_nellcor,
    parameters=frozenset({"spo2", "pr"}),
    samples=("12-NOV-25 14:00:05    97    72   50", "12-NOV-25 14:00:15   ---   ---  --- SO"),  # synthetic
    header=(HEADER, COLUMNS),
)
