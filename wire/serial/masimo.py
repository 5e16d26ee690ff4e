"""Masimo ASCII 1 (Radical-7, Rad-8, Rad-97 and relatives; 9600 8N1, one line a second).

``MM/DD/YY HH:MM:SS`` then whitespace-separated ``KEY=VALUE`` tokens, taken by key
(case-insensitive), in any order; which tokens appear differs by model.
"""

from __future__ import annotations

import re

from monitor.readings import QualityFlag
from monitor.seam import Frame, ParseError
from wire.dialect import Dialect
from wire.numbers import format_decimal
from wire.serial.common import HEX, TIME, device_clock, display_value, int_field, is_dashes, q, upper, value

__all__ = ["DIALECT", "EXC_FLAGS", "format_masimo", "parse_masimo"]

_DATE = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{2}", re.ASCII)
_SN = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)
_CLOCK = "%m/%d/%y %H:%M:%S"

#: EXC bits (hex) -> quality flags. 100 and 200 are reserved; 800 ("Masimo SET": the
#: algorithm runs in full SET mode) is a normal state, not a quality problem. The raw EXC
#: word is kept in ``extra["exc"]`` whatever its bits.
EXC_FLAGS: dict[int, QualityFlag] = {
    0x001: QualityFlag.NO_SENSOR,
    0x002: QualityFlag.DEFECTIVE_SENSOR,
    0x004: QualityFlag.LOW_PERFUSION,
    0x008: QualityFlag.PULSE_SEARCH,
    0x010: QualityFlag.INTERFERENCE,
    0x020: QualityFlag.SENSOR_OFF,
    0x040: QualityFlag.AMBIENT_LIGHT,
    0x080: QualityFlag.UNRECOGNISED_SENSOR,
    0x400: QualityFlag.LOW_SIGNAL_QUALITY,
}

# Display-only numeric tokens: KEY -> extra key. Parsed leniently (a value that is not a
# number becomes None) so that a model printing something unexpected in a field Chairside
# only displays does not lose its SpO2 and pulse rate.
_EXTRA = {
    "PI": "pi", "SPCO": "spco", "SPMET": "spmet", "SPHB": "sphb", "SPOC": "spoc",
    "PVI": "pvi", "DESAT": "desat", "PIDELTA": "pi_delta",
}


def _pct(text: str, what: str, line: str) -> float | None:
    return value(text.removesuffix("%"), what, "masimo", line)


def parse_masimo(line: str) -> Frame:
    """One line of Masimo ASCII 1. Frame contents:

    - values: ``spo2`` from SPO2 (``097%`` -> 97.0), ``pr`` from BPM; a key the line lacks
      is absent, dashes give None. A line with neither SPO2 nor BPM is ``malformed``.
    - flags: from the EXC hex word (:data:`EXC_FLAGS`); EXC not hex -> ``bad_value``.
    - device: ``"masimo-<SN>"``; None when SN is missing or dashes.
    - extra: ``device_local_time`` (as written, e.g. ``"11/23/26 19:40:01"``), ``exc``
      (int), ``alarm`` (int from the ALARM hex word, None if dashes or not hex), ``exc1``
      (string, as written), and ``pi``, ``spco``, ``spmet``, ``sphb``, ``spoc``, ``pvi``,
      ``desat``, ``pi_delta`` (float or None) for the tokens present.
    """
    tokens = line.split()
    if len(tokens) < 3 or not _DATE.fullmatch(tokens[0]) or not TIME.fullmatch(tokens[1]):
        raise ParseError("malformed", f"masimo: expected a date, a time and KEY=VALUE tokens: {q(line)}")
    fields: dict[str, str] = {}
    for token in tokens[2:]:
        key, sep, text = token.partition("=")
        if not sep or not key:
            raise ParseError("malformed", f"masimo: token is not KEY=VALUE: {q(token)} in {q(line)}")
        key = upper(key)
        if key in fields:
            raise ParseError("malformed", f"masimo: {key} appears twice in {q(line)}")
        fields[key] = text
    if "SPO2" not in fields and "BPM" not in fields:
        raise ParseError("malformed", f"masimo: neither SPO2 nor BPM in {q(line)}")

    values: dict[str, float | None] = {}
    if "SPO2" in fields:
        values["spo2"] = _pct(fields["SPO2"], "SPO2", line)
    if "BPM" in fields:
        values["pr"] = _pct(fields["BPM"], "BPM", line)

    extra: dict[str, object] = {"device_local_time": f"{tokens[0]} {tokens[1]}"}
    flags = 0
    exc = fields.get("EXC")
    if exc is not None and not is_dashes(exc):
        if not HEX.fullmatch(exc):
            raise ParseError("bad_value", f"masimo: EXC is not hex: {q(exc)} in {q(line)}")
        bits = int(exc, 16)
        extra["exc"] = bits
        for bit, flag in EXC_FLAGS.items():
            if bits & bit:
                flags |= flag
    if "ALARM" in fields:
        alarm = fields["ALARM"]
        extra["alarm"] = int(alarm, 16) if HEX.fullmatch(alarm) else None
    if "EXC1" in fields:
        extra["exc1"] = fields["EXC1"]
    for key, name in _EXTRA.items():
        if key in fields:
            extra[name] = display_value(fields[key])

    device = None
    sn = fields.get("SN")
    if sn is not None and not is_dashes(sn):
        if not _SN.fullmatch(sn):
            raise ParseError("bad_value", f"masimo: SN is not a serial number: {q(sn)} in {q(line)}")
        device = f"masimo-{sn}"
    return Frame(values=values, flags=int(flags), device=device, extra=extra)


def format_masimo(frame: Frame) -> str:
    """A Masimo ASCII 1 line (no terminator) for ``frame``, in the Radical-7's token order.

    SPO2 and BPM are rounded to whole numbers (the device's precision); a device
    ``masimo-<SN>`` gives the SN token; EXC is ``extra["exc"]`` with the bits of the flags
    it has a code for (:data:`EXC_FLAGS`); ALARM, EXC1 and the display tokens come from
    ``extra`` when there.
    """
    extra = frame.extra
    tokens = [device_clock(extra, frame.time, _CLOCK, "masimo")]
    if frame.device is not None:
        sn = frame.device.removeprefix("masimo-")
        if sn == frame.device or not _SN.fullmatch(sn):
            raise ValueError(f"masimo: device must be masimo-<SN>, got {frame.device!r}")
        tokens.append(f"SN={sn}")
    if "spo2" in frame.values:
        tokens.append(f"SPO2={int_field(frame.values['spo2'], 'SPO2', 3)}%")
    if "pr" in frame.values:
        tokens.append(f"BPM={int_field(frame.values['pr'], 'BPM', 3)}")
    if not {"spo2", "pr"} & set(frame.values):
        raise ValueError("masimo: a line needs spo2 or pr")
    unknown = set(frame.values) - {"spo2", "pr"}
    if unknown:
        raise ValueError(f"masimo: no token for {sorted(unknown)}")
    for key, name in _EXTRA.items():
        if name in extra:
            number = extra[name]
            tokens.append(f"{key}=" + ("--" if number is None else format_decimal(number)))
    if "alarm" in extra:
        tokens.append("ALARM=" + ("----" if extra["alarm"] is None else f"{extra['alarm']:04X}"))
    exc = int(extra.get("exc", 0))
    for bit, flag in EXC_FLAGS.items():
        if frame.flags & flag:
            exc |= bit
    tokens.append(f"EXC={exc:06X}")
    if "exc1" in extra:
        tokens.append(f"EXC1={extra['exc1']}")
    return " ".join(tokens)


DIALECT = Dialect(
    name="masimo",
    transport="serial",
    title="Masimo ASCII 1 (Radical-7, Rad-8, Rad-97)",
    parse=parse_masimo,
    format=format_masimo,
    parameters=frozenset({"spo2", "pr"}),
    samples=(  # synthetic, in the Radical-7 service manual's layout
        "11/23/26 19:40:01 SN=0000071234 SPO2=097% BPM=072 PI=02.13% SPCO=--.-% SPMET=--.-% "
        "DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000000",
        "11/23/26 19:40:02 SN=0000071234 SPO2=---% BPM=--- PI=--.--% ALARM=0000 EXC=000020",
    ),
)
