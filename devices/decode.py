"""``chairside decode``: a capture of what a device sent, through the bay's own parsers.

For the biomedical engineer wiring a monitor: save what the device sends (``cat
/dev/ttyUSB0 > capture.txt``, ``mosquitto_sub -t 'chairside/+/+/vitals' > capture.jsonl``,
an MLLP capture from the interface engine) and see, one JSON object per line on standard
output, what the bay makes of it:

- each reading: ``parameter``, ``value`` (null: the device said "no value"), ``unit``,
  ``device_time``, ``flags``, and ``device`` / ``seq`` when the frame carries them;
- each status-only record (flags, no value): ``flags``;
- each line or message that is refused: ``"rejected": true``, ``reason`` (the counter key
  the bay would count it under) and ``detail``. A reading the parser takes but the core
  would refuse (outside the parameter's plausible range) is a rejected one too, reason
  ``implausible``.

Every object says where it came from: ``line`` (serial, MQTT: 1-based) or ``message`` (HL7:
1-based, with ``control_id``). ``device_time`` is RFC 3339 (UTC) when the frame has a time
with a zone (Chairside line ``ts``, MQTT ``ts``, HL7 OBX-14/OBR-7/MSH-7), else the device's
own clock text as written (Masimo, Nellcor, some Nonin models), else null: the bay then uses
the time it received the frame.

Framing: a serial capture is cut into lines as the serial source does (LF or CR LF, at most
512 bytes a line, UTF-8); ``mqtt-json`` takes one payload per line; ``hl7`` takes MLLP frames
(``0x0B`` ... ``0x1C 0x0D``) when the capture has a start block, else messages separated by
blank lines. A summary goes to standard error. Exit status 0 whatever the capture held; 2
when the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from monitor.parameters import by_key
from monitor.readings import check_value, flag_names
from monitor.seam import Frame, ParseError
from monitor.timefmt import rfc3339
from wire.dialect import Dialect
from wire.hl7.mllp import START_BLOCK, MllpDecoder, MllpProblem
from wire.hl7.pcd01 import Hl7ParseError
from wire.lines import LineError, LineSplitter
from wire.registry import lookup

__all__ = ["decode", "main"]

Record = dict[str, Any]
MAX_HL7_MESSAGE = 16 << 20
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


def decode(protocol: str, data: bytes) -> Iterator[Record]:
    """The records of a capture, in order (pure: bytes in, dicts out). KeyError for an
    unknown protocol."""
    dialect = lookup(protocol)
    if dialect.transport == "serial":
        return _serial(dialect, data)
    if dialect.transport == "mqtt":
        return _payloads(dialect, data)
    return _hl7(dialect, data)


def _serial(dialect: Dialect, data: bytes) -> Iterator[Record]:
    splitter = LineSplitter()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    # one line at a time, so that records carry the capture's line numbers (blank lines too);
    # a capture that ends inside a line gets that line taken as it is
    for n, line in enumerate(lines, start=1):
        for item in splitter.feed(line + b"\n"):
            yield from _serial_item(dialect, {"line": n}, item)


def _serial_item(dialect: Dialect, where: Record, item: str | LineError) -> Iterator[Record]:
    if isinstance(item, LineError):
        yield _rejected(where, item.reason, item.detail)
        return
    try:
        frame = dialect.parse(item)
    except ParseError as exc:
        yield _rejected(where, exc.reason, str(exc))
        return
    if frame is not None:  # None: a header or column line, no reading
        yield from _frame_records(where, frame)


def _payloads(dialect: Dialect, data: bytes) -> Iterator[Record]:
    for n, payload in enumerate(data.split(b"\n"), start=1):
        payload = payload.removesuffix(b"\r")
        if not payload.strip():
            continue
        try:
            frame = dialect.parse(payload)
        except ParseError as exc:
            yield _rejected({"line": n}, exc.reason, str(exc))
            continue
        yield from _frame_records({"line": n}, frame)


def _frame_records(where: Record, frame: Frame) -> Iterator[Record]:
    flags = flag_names(frame.flags)
    if frame.time is not None:
        device_time: str | None = rfc3339(frame.time)
    else:
        local = frame.extra.get("device_local_time")
        device_time = None if local is None else str(local)
    ids: Record = {}
    if frame.device is not None:
        ids["device"] = frame.device
    if frame.seq is not None:
        ids["seq"] = frame.seq
    if not frame.values:
        yield {**where, "flags": flags, "device_time": device_time, **ids}
        return
    for key, value in frame.values.items():
        yield _reading(where, key, value, device_time, flags, ids)


def _reading(where: Record, key: str, value: float | None, device_time: str | None,
             flags: list[str], ids: Record) -> Record:
    param = by_key(key)
    record = {**where, "parameter": key, "value": value, "unit": param.unit if param else None,
              "device_time": device_time, "flags": flags, **ids}
    if param is not None and value is not None and check_value(value) is None \
            and not param.is_plausible(value):
        low, high = param.plausible
        record.update(rejected=True, reason="implausible",
                      detail=f"{key} {value:g} is outside the plausible range {low:g}-{high:g} {param.unit}")
    return record


def _hl7(dialect: Dialect, data: bytes) -> Iterator[Record]:
    n = 0
    for item in _hl7_messages(data):
        n += 1
        where: Record = {"message": n}
        if isinstance(item, MllpProblem):
            yield _rejected(where, f"mllp_{item.reason}", f"MLLP: {item.reason}, {item.size} bytes "
                            f"(starts {item.head[:40]!r})")
            continue
        try:
            message = dialect.parse(item)
        except Hl7ParseError as exc:
            if exc.header is not None:
                where["control_id"] = exc.header.control_id
            yield _rejected(where, exc.reason, str(exc))
            continue
        where["control_id"] = message.control_id
        for obs in message.observations:
            record = _reading(where, obs.parameter, obs.value, rfc3339(obs.time), flag_names(obs.flags),
                              {"device": obs.equipment} if obs.equipment else {})
            record["unit_sent"] = obs.unit
            yield record
        for rej in message.rejections:
            yield _rejected({**where, "segment": rej.location}, rej.reason, rej.detail)


def _hl7_messages(data: bytes) -> Iterator[bytes | MllpProblem]:
    if START_BLOCK in data:
        decoder = MllpDecoder(max_message_bytes=MAX_HL7_MESSAGE)
        yield from decoder.feed(data)
        yield from decoder.close()
        return
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    for block in _BLANK_LINES.split(text.decode("latin-1")):
        if block.strip():
            yield block.encode("latin-1")  # back to the bytes sent: the parser decodes them


def _rejected(where: Record, reason: str, detail: str) -> Record:
    return {**where, "rejected": True, "reason": reason, "detail": detail}


def main(args: argparse.Namespace) -> int:
    """``chairside decode --protocol NAME FILE|-``: print the records; 0, or 2 for a file
    that cannot be read."""
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                data = f.read()
    except OSError as exc:
        print(f"chairside decode: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    counts: Counter[str] = Counter()
    out = sys.stdout
    try:
        for record in decode(args.protocol, data):
            counts["rejected" if record.get("rejected") else
                   "readings" if "parameter" in record else "status records"] += 1
            out.write(json.dumps(record) + "\n")
        out.flush()
    except BrokenPipeError:  # e.g. piped into head: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0
    summary = ", ".join(f"{counts[k]} {k}" for k in ("readings", "status records", "rejected"))
    print(f"chairside decode ({args.protocol}): {summary}", file=sys.stderr)
    return 0
