"""The Chairside line (docs/protocols.md#serial-lines), NMEA-style, for multi-parameter monitors, NIBP
modules and DIY devices::

    $VT,seq=1842,hr=72,spo2=98,pr=71,nibp=121/79/93,flags=SENSOR_OFF|LOW_PERFUSION*4C\r\n

Fields are ``key=value`` in any order; empty or missing means no value; ``nibp`` is
``sys/dia/map``. The two hex digits after ``*`` are the XOR of every byte between ``$`` and
``*`` (uppercase). A wrong checksum rejects the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import reduce

from monitor.readings import QualityFlag, flag_names
from monitor.seam import Frame, ParseError
from wire.dialect import Dialect
from wire.lines import MAX_LINE
from wire.numbers import format_decimal, to_float
from wire.serial.common import q

__all__ = [
    "CHAIRSIDE_KEYS",
    "DIALECT",
    "chairside_checksum",
    "chairside_line",
    "format_chairside",
    "parse_chairside",
]

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
    number = to_float(text)
    if number is not None:
        return number
    if _RFC3339.fullmatch(text):
        try:
            return datetime.fromisoformat(text.upper().replace(" ", "T")).timestamp()
        except (ValueError, OverflowError):
            pass
    raise ParseError("bad_value", f"chairside: ts is neither RFC 3339 with an offset nor UNIX seconds: "
                                  f"{q(text)} in {q(line)}")


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
        raise ParseError("malformed", f"chairside: line does not start with '$': {q(line)}")
    body, star, given = text[1:].rpartition("*")
    if not star:
        raise ParseError("checksum", f"chairside: no '*' checksum: {q(line)}")
    if not _CHECKSUM.fullmatch(given):
        raise ParseError("checksum", f"chairside: checksum must be two uppercase hex digits, got "
                                     f"{q(given)} in {q(line)}")
    expected = chairside_checksum(body)
    if given != expected:
        raise ParseError("checksum",
                         f"chairside: checksum {given} but the line sums to {expected}: {q(line)}")
    sentence, *parts = body.split(",")
    if sentence != "VT":
        raise ParseError("unknown_sentence", f"chairside: not a $VT sentence: {q(line)}")

    fields: dict[str, str] = {}
    for part in parts:
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ParseError("malformed", f"chairside: field is not key=value: {q(part)} in {q(line)}")
        if key in fields:
            raise ParseError("malformed", f"chairside: {key!r} appears twice in {q(line)}")
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
                                     f"chairside: nibp must be sys/dia/map: {q(value)} in {q(line)}")
                for name, part in zip(_NIBP_KEYS, triple, strict=True):
                    values[name] = _chairside_number(part, "nibp", line)
        elif key == "flags":
            for name in value.split("|") if value else ():
                member = QualityFlag.__members__.get(name)
                if member is None:
                    raise ParseError("bad_value", f"chairside: unknown flag {q(name)} in {q(line)}")
                flags |= member
        elif key == "seq":
            if value:
                if not _SEQ.fullmatch(value) or int(value) > _SEQ_MAX:
                    raise ParseError("bad_value", f"chairside: seq is not a sequence number: {q(value)}")
                seq = int(value)
        elif key == "ts":
            if value:
                time = _parse_ts(value, line)
        elif key == "dev":
            if value:
                if not _DEVICE.fullmatch(value):
                    raise ParseError("bad_value", f"chairside: dev is not a device id: {q(value)}")
                device = value
        else:
            ignored.append(key)
    extra: dict[str, object] = {"ignored": ignored} if ignored else {}
    return Frame(values=values, flags=int(flags), device=device, seq=seq, time=time, extra=extra)


def _chairside_number(text: str, what: str, line: str) -> float:
    value = to_float(text)
    if value is None:
        raise ParseError("bad_value", f"chairside: {what} is not a number: {q(text)} in {q(line)}")
    return value


def _format_ts(ts: float | int | str | datetime) -> str:
    if isinstance(ts, datetime):
        if ts.utcoffset() is None:
            raise ValueError("ts: a datetime needs a time zone")
        text = ts.isoformat()
    elif isinstance(ts, str):
        text = ts
    else:
        return format_decimal(ts)
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
    would refuse, or when the line would be longer than :data:`~wire.lines.MAX_LINE`
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
            fields.append(f"{key}=" + ("" if value is None else format_decimal(value)))
    nibp = [values.get(key) for key in _NIBP_KEYS]
    if any(v is not None for v in nibp):
        if any(v is None for v in nibp):
            raise ValueError("nibp_sys, nibp_dia and nibp_map go together: give all three or none")
        fields.append("nibp=" + "/".join(format_decimal(v) for v in nibp))
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


def format_chairside(frame: Frame) -> str:
    """:func:`chairside_line` of a Frame: its values, seq, flags, time (UNIX seconds) and
    device. ``parse_chairside(format_chairside(f)) == f`` for a frame without
    ``extra["ignored"]`` (unknown keys are not kept) and without NIBP keys set to None."""
    return chairside_line(frame.values, seq=frame.seq, flags=frame.flags, ts=frame.time,
                          device=frame.device)


DIALECT = Dialect(
    name="chairside",
    aliases=("chairside-line",),
    transport="serial",
    title="Chairside line ($VT, NMEA-style with a checksum)",
    parse=parse_chairside,
    format=format_chairside,
    parameters=None,
    samples=(  # the contract's own examples (docs/protocols.md#serial-lines)
        "$VT,seq=1842,hr=72,spo2=98,pr=71,nibp=121/79/93,flags=SENSOR_OFF|LOW_PERFUSION*4C",
        "$VT,seq=77,dev=nibp-bay2-04,ts=2026-11-23T19:40:01.250Z,nibp=118/76/90*74",
    ),
)
