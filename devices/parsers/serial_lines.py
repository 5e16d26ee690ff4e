"""Parsers for the serial line protocols of PROTOCOLS.md section 3, one pure function each.

Every parser takes one line (a ``str`` from :class:`devices.parsers.lines.LineSplitter`,
terminator already removed; surrounding blanks are ignored) and returns a
:class:`~devices.source.Frame`, or ``None`` for a line that carries no reading (a Nellcor
header or column line). A line that cannot be taken raises
:class:`~devices.source.ParseError` and nothing else; its ``reason`` is the counter key:

``malformed``
    the line does not have the shape of its protocol (missing date/time, missing key,
    token without ``=``, duplicate key, wrong number of fields, not starting with ``$``).
``bad_value``
    a field is there but its value is not what it must be (not a number, not hex, a bad
    timestamp, an unknown flag name, a bad device id or sequence number).
``checksum``
    Chairside line: checksum missing, not two uppercase hex digits, or wrong.
``unknown_sentence``
    Chairside line: a correct checksum but a sentence other than ``$VT``.
``unknown_status``
    Nellcor row: a two-letter status code that is not one of the documented ones.

Values are converted to ``float``; ``None`` means the device said "no value" (dashes, or an
empty Chairside field). The parsers do not check plausible ranges (the core does), but they
refuse anything that is not a plain decimal number (``nan``, ``inf``, ``1e3``, non-ASCII
digits are ``bad_value``). Frame.values only ever holds keys of section 1; dialect fields
the core has no parameter for (PI, SpCO, pulse amplitude, alarm words...) go to
``Frame.extra`` for display.

The device dialects carry a local date and time without a zone: it is kept, as the device
wrote it, in ``extra["device_local_time"]`` and ``Frame.time`` stays ``None`` (the source
uses the receive time). Only the Chairside line has a ``ts`` with a zone.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import reduce

from devices.parsers.lines import MAX_LINE
from devices.source import Frame, ParseError
from monitor.readings import QualityFlag, flag_names

__all__ = [
    "CHAIRSIDE_KEYS",
    "MASIMO_EXC_FLAGS",
    "NELLCOR_STATUS_FLAGS",
    "PARSERS",
    "chairside_checksum",
    "chairside_line",
    "parse_chairside",
    "parse_masimo",
    "parse_nellcor",
    "parse_nonin",
]

# --- shared helpers ----------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_HEX = re.compile(r"[0-9A-Fa-f]{1,16}", re.ASCII)
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
_QUOTE_CHARS = 48


def _q(text: str) -> str:
    """A short quote of a line or field for an error message."""
    return repr(text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "...")


def _is_dashes(text: str) -> bool:
    """``---``, ``--.-``, ``--.--``, ``+--``: the dialects' way of saying "no value"."""
    return "-" in text and not text.strip("-.+")


def _to_float(text: str) -> float | None:
    """A plain decimal number, or None if ``text`` is not one (or overflows)."""
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _value(text: str, what: str, proto: str, line: str) -> float | None:
    """A measurement field: dashes -> None, a number -> float, anything else -> bad_value."""
    if _is_dashes(text):
        return None
    value = _to_float(text)
    if value is None:
        raise ParseError("bad_value", f"{proto}: {what} is not a number: {_q(text)} in {_q(line)}")
    return value


def _upper(text: str) -> str:
    """Upper case for ASCII only (``"\u017f".upper()`` is ``"S"``: no such surprises)."""
    return text.upper() if text.isascii() else text


def _display_value(text: str) -> float | None:
    """A display-only field: a number, else None (dashes and anything odd alike)."""
    return _to_float(text.removesuffix("%"))


# --- Masimo ASCII 1 ------------------------------------------------------------------------

_MASIMO_DATE = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{2}", re.ASCII)
_MASIMO_SN = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)

#: EXC bits (hex) -> quality flags. 100 and 200 are reserved; 800 ("Masimo SET": the
#: algorithm runs in full SET mode) is a normal state, not a quality problem. The raw EXC
#: word is kept in ``extra["exc"]`` whatever its bits.
MASIMO_EXC_FLAGS: dict[int, QualityFlag] = {
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
_MASIMO_EXTRA = {
    "PI": "pi", "SPCO": "spco", "SPMET": "spmet", "SPHB": "sphb", "SPOC": "spoc",
    "PVI": "pvi", "DESAT": "desat", "PIDELTA": "pi_delta",
}


def _masimo_pct(text: str, what: str, line: str) -> float | None:
    return _value(text.removesuffix("%"), what, "masimo", line)


def parse_masimo(line: str) -> Frame:
    """One line of Masimo ASCII 1 (Radical-7, Rad-8, Rad-97 and relatives).

    ``MM/DD/YY HH:MM:SS`` then whitespace-separated ``KEY=VALUE`` tokens, taken by key
    (case-insensitive), in any order; unknown keys are ignored. Frame contents:

    - values: ``spo2`` from SPO2 (``097%`` -> 97.0), ``pr`` from BPM; a key the line lacks
      is absent, dashes give None. A line with neither SPO2 nor BPM is ``malformed``.
    - flags: from the EXC hex word (:data:`MASIMO_EXC_FLAGS`); EXC not hex -> ``bad_value``.
    - device: ``"masimo-<SN>"``; None when SN is missing or dashes.
    - extra: ``device_local_time`` (as written, e.g. ``"11/23/26 19:40:01"``), ``exc``
      (int), ``alarm`` (int from the ALARM hex word, None if dashes or not hex), ``exc1``
      (string, as written), and ``pi``, ``spco``, ``spmet``, ``sphb``, ``spoc``, ``pvi``,
      ``desat``, ``pi_delta`` (float or None) for the tokens present.
    """
    tokens = line.split()
    if len(tokens) < 3 or not _MASIMO_DATE.fullmatch(tokens[0]) or not _TIME.fullmatch(tokens[1]):
        raise ParseError("malformed", f"masimo: expected a date, a time and KEY=VALUE tokens: {_q(line)}")
    fields: dict[str, str] = {}
    for token in tokens[2:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ParseError("malformed", f"masimo: token is not KEY=VALUE: {_q(token)} in {_q(line)}")
        key = _upper(key)
        if key in fields:
            raise ParseError("malformed", f"masimo: {key} appears twice in {_q(line)}")
        fields[key] = value
    if "SPO2" not in fields and "BPM" not in fields:
        raise ParseError("malformed", f"masimo: neither SPO2 nor BPM in {_q(line)}")

    values: dict[str, float | None] = {}
    if "SPO2" in fields:
        values["spo2"] = _masimo_pct(fields["SPO2"], "SPO2", line)
    if "BPM" in fields:
        values["pr"] = _masimo_pct(fields["BPM"], "BPM", line)

    extra: dict[str, object] = {"device_local_time": f"{tokens[0]} {tokens[1]}"}
    flags = 0
    exc = fields.get("EXC")
    if exc is not None and not _is_dashes(exc):
        if not _HEX.fullmatch(exc):
            raise ParseError("bad_value", f"masimo: EXC is not hex: {_q(exc)} in {_q(line)}")
        bits = int(exc, 16)
        extra["exc"] = bits
        for bit, flag in MASIMO_EXC_FLAGS.items():
            if bits & bit:
                flags |= flag
    if "ALARM" in fields:
        alarm = fields["ALARM"]
        extra["alarm"] = int(alarm, 16) if _HEX.fullmatch(alarm) else None
    if "EXC1" in fields:
        extra["exc1"] = fields["EXC1"]
    for key, name in _MASIMO_EXTRA.items():
        if key in fields:
            extra[name] = _display_value(fields[key])

    device = None
    sn = fields.get("SN")
    if sn is not None and not _is_dashes(sn):
        if not _MASIMO_SN.fullmatch(sn):
            raise ParseError("bad_value", f"masimo: SN is not a serial number: {_q(sn)} in {_q(line)}")
        device = f"masimo-{sn}"
    return Frame(values=values, flags=int(flags), device=device, extra=extra)


# --- Nonin ASCII ---------------------------------------------------------------------------

_NONIN_MARKER = re.compile(r"[*A-Za-z]{1,3}", re.ASCII)


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
    if tokens and _TIME.fullmatch(tokens[0]):
        extra["device_local_time"] = tokens.pop(0)
    if len(tokens) not in (2, 3) or not _upper(tokens[0]).startswith("SPO2=") \
            or not _upper(tokens[1]).startswith("HR="):
        raise ParseError("malformed", f"nonin: expected 'SPO2=XXX HR=YYY [flag]': {_q(line)}")
    hr = tokens[1][3:]
    marker = tokens[2] if len(tokens) == 3 else ""
    if hr.endswith("*") and len(hr) > 1:  # event marker written straight after the value
        hr, marker = hr[:-1], "*" + marker
    if marker and not _NONIN_MARKER.fullmatch(marker):
        raise ParseError("malformed", f"nonin: unexpected trailing token {_q(marker)} in {_q(line)}")
    values = {"spo2": _value(tokens[0][5:], "SPO2", "nonin", line),
              "pr": _value(hr, "HR", "nonin", line)}
    if marker:
        extra["marker"] = marker
        extra["event"] = "*" in marker
    return Frame(values=values, extra=extra)


# --- Nellcor trend output ------------------------------------------------------------------

_NELLCOR_DATE = re.compile(r"[0-9]{2}-[A-Za-z]{3}-[0-9]{2}", re.ASCII)
_NELLCOR_MODEL = re.compile(r"N-?[0-9]{3,4}[A-Z]{0,2}", re.ASCII)
_NELLCOR_CODE = re.compile(r"[A-Za-z]{2}", re.ASCII)
# First words of the lines that carry no reading: the model header ("N-600x VERSION ...",
# "Nellcor N-595 ..."), the column line ("TIME %SpO2 BPM PA Status") and the patient-mode
# line some models print under the header ("ADULT 0SAT-S").
_NELLCOR_NON_DATA = {"TIME", "NELLCOR", "ADULT", "NEONATE"}

#: Nellcor status codes -> quality flags. Codes mapped to 0 (alarm off/silenced, limit
#: alarms) carry no signal-quality meaning; every code is kept in ``extra["status"]``.
NELLCOR_STATUS_FLAGS: dict[str, QualityFlag] = {
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
    - flags: from the status codes (:data:`NELLCOR_STATUS_FLAGS`).
    - extra: ``device_local_time`` (as written, e.g. ``"12-NOV-25 14:00:05"``),
      ``pulse_amplitude`` (float or None), ``status`` (list of every code, in line order).

    Fewer than five fields, or a trailing field that is not a two-letter code, is
    ``malformed``; an unknown code is ``unknown_status`` (codes are upper case, as printed).
    """
    tokens = line.split()
    if not tokens:
        return None
    first = _upper(tokens[0])
    if first in _NELLCOR_NON_DATA or _NELLCOR_MODEL.fullmatch(first):
        return None
    if not _NELLCOR_DATE.fullmatch(tokens[0]) or len(tokens) < 2 or not _TIME.fullmatch(tokens[1]):
        raise ParseError("malformed", f"nellcor: not a header, column line or data row: {_q(line)}")
    if len(tokens) < 5:
        raise ParseError("malformed", f"nellcor: expected TIME %SPO2 BPM PA [status...]: {_q(line)}")
    values = {"spo2": _value(tokens[2], "%SPO2", "nellcor", line),
              "pr": _value(tokens[3], "BPM", "nellcor", line)}
    pulse_amplitude = _value(tokens[4], "PA", "nellcor", line)
    flags = 0
    status: list[str] = []
    for code in tokens[5:]:
        if not _NELLCOR_CODE.fullmatch(code):
            raise ParseError("malformed", f"nellcor: too many fields or bad status {_q(code)} in {_q(line)}")
        if code not in NELLCOR_STATUS_FLAGS:
            raise ParseError("unknown_status", f"nellcor: unknown status code {_q(code)} in {_q(line)}")
        flags |= NELLCOR_STATUS_FLAGS[code]
        status.append(code)
    extra = {"device_local_time": f"{tokens[0]} {tokens[1]}",
             "pulse_amplitude": pulse_amplitude, "status": status}
    return Frame(values=values, flags=int(flags), extra=extra)


# --- Chairside line ------------------------------------------------------------------------

#: The parameter keys a ``$VT`` line carries directly (NIBP comes as ``nibp=sys/dia/map``).
CHAIRSIDE_KEYS = ("hr", "spo2", "pr")
_NIBP_KEYS = ("nibp_sys", "nibp_dia", "nibp_map")
_CHECKSUM = re.compile(r"[0-9A-F]{2}", re.ASCII)
_DEVICE = re.compile(r"[A-Za-z0-9_.:-]{1,64}", re.ASCII)
_SEQ = re.compile(r"[0-9]{1,19}", re.ASCII)
_SEQ_MAX = 2**63 - 1
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})", re.ASCII)


def chairside_checksum(body: str) -> str:
    """XOR of every byte of ``body`` (the text between ``$`` and ``*``), two uppercase hex digits."""
    return f"{reduce(lambda a, b: a ^ b, body.encode('utf-8', 'surrogatepass'), 0):02X}"


def _parse_ts(text: str, line: str) -> float:
    """``ts``: RFC 3339 with an offset (``Z`` or ``+hh:mm``), or UNIX seconds."""
    number = _to_float(text)
    if number is not None:
        return number
    if _RFC3339.fullmatch(text):
        try:
            return datetime.fromisoformat(text.upper().replace(" ", "T")).timestamp()
        except (ValueError, OverflowError):
            pass
    raise ParseError("bad_value", f"chairside: ts is neither RFC 3339 with an offset nor UNIX seconds: "
                                  f"{_q(text)} in {_q(line)}")


def parse_chairside(line: str) -> Frame:
    """One Chairside line: ``$VT,key=value,...*HH``.

    The checksum is checked first: it must be there and be exactly two *uppercase* hex
    digits (as the contract writes it; ``*4c`` is refused), equal to the XOR of the bytes
    between ``$`` and ``*``. Then the sentence must be ``VT``. Fields are ``key=value`` in
    any order; empty fields (``,,``) are skipped; a field without ``=`` or a key given twice
    is ``malformed``; unknown keys are ignored (listed in ``extra["ignored"]``). Frame:

    - values: ``hr``, ``spo2``, ``pr`` as given (``hr=`` -> None, no ``hr`` key -> absent);
      ``nibp=sys/dia/map`` -> ``nibp_sys``, ``nibp_dia``, ``nibp_map`` (all three numbers,
      or ``nibp=`` which leaves them absent; anything else is ``bad_value``).
    - flags: ``flags=NAME|NAME`` with :class:`~monitor.readings.QualityFlag` names; an
      unknown name is ``bad_value``.
    - seq: ``seq=`` a non-negative integer below 2**63 (else ``bad_value``).
    - time: ``ts=`` RFC 3339 with an offset, or UNIX seconds (else ``bad_value``).
    - device: ``dev=`` 1-64 of ``[A-Za-z0-9_.:-]`` (else ``bad_value``).
    """
    text = line.strip()
    if not text.startswith("$"):
        raise ParseError("malformed", f"chairside: line does not start with '$': {_q(line)}")
    body, star, given = text[1:].rpartition("*")
    if not star:
        raise ParseError("checksum", f"chairside: no '*' checksum: {_q(line)}")
    if not _CHECKSUM.fullmatch(given):
        raise ParseError("checksum", f"chairside: checksum must be two uppercase hex digits, got "
                                     f"{_q(given)} in {_q(line)}")
    expected = chairside_checksum(body)
    if given != expected:
        raise ParseError("checksum",
                         f"chairside: checksum {given} but the line sums to {expected}: {_q(line)}")
    sentence, *parts = body.split(",")
    if sentence != "VT":
        raise ParseError("unknown_sentence", f"chairside: not a $VT sentence: {_q(line)}")

    fields: dict[str, str] = {}
    for part in parts:
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ParseError("malformed", f"chairside: field is not key=value: {_q(part)} in {_q(line)}")
        if key in fields:
            raise ParseError("malformed", f"chairside: {key!r} appears twice in {_q(line)}")
        fields[key] = value

    values: dict[str, float | None] = {}
    flags = 0
    seq: int | None = None
    time: float | None = None
    device: str | None = None
    ignored: list[str] = []
    for key, value in fields.items():
        if key in CHAIRSIDE_KEYS:
            values[key] = None if value == "" else _chairside_number(value, key, line)
        elif key == "nibp":
            if value:
                triple = value.split("/")
                if len(triple) != 3:
                    raise ParseError("bad_value",
                                     f"chairside: nibp must be sys/dia/map: {_q(value)} in {_q(line)}")
                for name, part in zip(_NIBP_KEYS, triple, strict=True):
                    values[name] = _chairside_number(part, "nibp", line)
        elif key == "flags":
            for name in value.split("|") if value else ():
                member = QualityFlag.__members__.get(name)
                if member is None:
                    raise ParseError("bad_value", f"chairside: unknown flag {_q(name)} in {_q(line)}")
                flags |= member
        elif key == "seq":
            if value:
                if not _SEQ.fullmatch(value) or int(value) > _SEQ_MAX:
                    raise ParseError("bad_value", f"chairside: seq is not a sequence number: {_q(value)}")
                seq = int(value)
        elif key == "ts":
            if value:
                time = _parse_ts(value, line)
        elif key == "dev":
            if value:
                if not _DEVICE.fullmatch(value):
                    raise ParseError("bad_value", f"chairside: dev is not a device id: {_q(value)}")
                device = value
        else:
            ignored.append(key)
    extra: dict[str, object] = {"ignored": ignored} if ignored else {}
    return Frame(values=values, flags=int(flags), device=device, seq=seq, time=time, extra=extra)


def _chairside_number(text: str, what: str, line: str) -> float:
    value = _to_float(text)
    if value is None:
        raise ParseError("bad_value", f"chairside: {what} is not a number: {_q(text)} in {_q(line)}")
    return value


def _format_number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers pass
        raise ValueError(f"not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return format(Decimal(repr(number)), "f")  # shortest round-trip digits, never an exponent


def _format_ts(ts: float | int | str | datetime) -> str:
    if isinstance(ts, datetime):
        if ts.utcoffset() is None:
            raise ValueError("ts: a datetime needs a time zone")
        text = ts.isoformat()
    elif isinstance(ts, str):
        text = ts
    else:
        return _format_number(ts)
    _parse_ts(text, text)  # raises (ParseError is a ValueError) unless the contract allows it
    return text


def chairside_line(values: Mapping[str, float | None], *, seq: int | None = None,
                   flags: Iterable[str] | int = (), ts: float | str | datetime | None = None,
                   device: str | None = None) -> str:
    """Build a ``$VT`` line with its checksum (no line terminator: append ``\\r\\n``).

    ``values`` maps ``hr``, ``spo2``, ``pr`` (None -> empty field: "no value") and
    ``nibp_sys``/``nibp_dia``/``nibp_map`` (all three numbers, or all None/absent: NIBP is
    left out). ``flags`` are QualityFlag names or a mask; ``ts`` UNIX seconds, an RFC 3339
    string with an offset, or an aware datetime. Raises ValueError for anything the parser
    would refuse, or when the line would be longer than :data:`~devices.parsers.lines.MAX_LINE`
    bytes (the reader drops such lines). ``parse_chairside(chairside_line(v, ...))`` gives
    back ``v`` (NIBP keys given as None come back absent).
    """
    unknown = set(values) - set(CHAIRSIDE_KEYS) - set(_NIBP_KEYS)
    if unknown:
        raise ValueError(f"no $VT field for {sorted(unknown)}")
    fields = ["VT"]
    if seq is not None:
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= _SEQ_MAX:
            raise ValueError(f"seq must be an integer 0..2**63-1, got {seq!r}")
        fields.append(f"seq={seq}")
    if device is not None:
        if not _DEVICE.fullmatch(device):
            raise ValueError(f"device must be 1-64 of [A-Za-z0-9_.:-], got {device!r}")
        fields.append(f"dev={device}")
    if ts is not None:
        fields.append(f"ts={_format_ts(ts)}")
    for key in CHAIRSIDE_KEYS:
        if key in values:
            value = values[key]
            fields.append(f"{key}=" + ("" if value is None else _format_number(value)))
    nibp = [values.get(key) for key in _NIBP_KEYS]
    if any(v is not None for v in nibp):
        if any(v is None for v in nibp):
            raise ValueError("nibp_sys, nibp_dia and nibp_map go together: give all three or none")
        fields.append("nibp=" + "/".join(_format_number(v) for v in nibp))
    if isinstance(flags, int):
        if flags < 0 or flags & ~int(reduce(lambda a, b: a | b, QualityFlag, QualityFlag.NONE)):
            raise ValueError(f"unknown flag bits in {flags:#x}")
        mask = flags
    else:
        mask = 0
        for name in flags:
            member = QualityFlag.__members__.get(name)
            if member is None:
                raise ValueError(f"unknown flag {name!r}")
            mask |= member
    if mask:
        fields.append("flags=" + "|".join(flag_names(mask)))
    body = ",".join(fields)
    line = f"${body}*{chairside_checksum(body)}"
    if len(line.encode()) > MAX_LINE:
        raise ValueError(f"the line would be {len(line.encode())} bytes, more than {MAX_LINE}")
    return line


#: Protocol name (as in the serial source configuration) -> parser.
PARSERS: dict[str, Callable[[str], Frame | None]] = {
    "masimo": parse_masimo,
    "nonin": parse_nonin,
    "nellcor": parse_nellcor,
    "chairside": parse_chairside,
}
