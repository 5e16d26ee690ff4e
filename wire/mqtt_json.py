"""The MQTT topics and JSON payloads of docs/protocols.md#mqtt, as pure functions.

No broker, no clock: bytes and strings in, a :class:`~monitor.seam.Frame` (or a
:class:`~monitor.seam.ParseError` naming the counter key) out.

Topics::

    <prefix>/<bay>/<chair>/vitals    one JSON object per measurement message (QoS 1)
    <prefix>/<bay>/<chair>/status    "online" / "offline" (retained; "offline" is the Last Will)

Payload (at most 16 KiB of UTF-8 JSON)::

    {"device": "rad97-0012", "seq": 1842, "ts": "2026-11-23T19:40:01.250Z",
     "hr": 72, "spo2": 98, "pr": 71, "nibp": {"sys": 121, "dia": 79, "map": 93},
     "flags": ["SENSOR_OFF"]}

ParseError reasons: ``bad_topic``, ``too_large``, ``not_utf8``, ``bad_json``, ``malformed``
(not an object), ``bad_field`` (device, seq), ``bad_time`` (ts), ``bad_value`` (a value,
nibp, flags, or a NaN/Infinity literal), ``bad_status``.

Value ranges are not checked here (the core does, for every source alike); only types,
and that every number is finite.

``"nibp": null`` means "no cuff cycle in this message" and gives no NIBP readings at all:
an oximeter that sends it every second must not fill the chair's NIBP history with empty
entries. ``"nibp": {"sys": null, ...}`` gives explicit no-value readings for the keys given.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from monitor.readings import flag_names, parse_flags
from monitor.seam import Frame, ParseError
from monitor.timefmt import parse_rfc3339, rfc3339
from wire.dialect import Dialect

__all__ = ["DIALECT", "FLAGS", "MAX_PAYLOAD", "NIBP_KEYS", "VITALS_KEYS", "format_vitals", "parse_status",
           "parse_topic", "parse_vitals", "topic"]

#: Largest payload taken, in bytes (docs/protocols.md: "at most 16 KiB").
MAX_PAYLOAD = 16 * 1024
MAX_DEVICE = 64
MAX_SEQ = 2**63 - 1  # the store keeps seq in an SQLite INTEGER
#: Top-level numeric keys: payload key -> parameter key.
VITALS_KEYS = {"hr": "hr", "spo2": "spo2", "pr": "pr"}
#: Keys of the nibp object: payload key -> parameter key.
NIBP_KEYS = {"sys": "nibp_sys", "dia": "nibp_dia", "map": "nibp_map"}

#: The flags docs/protocols.md#mqtt allows in a payload.
FLAGS = ("SENSOR_OFF", "NO_SENSOR", "LOW_PERFUSION", "PULSE_SEARCH", "INTERFERENCE",
         "LOW_SIGNAL_QUALITY", "ARTIFACT", "LOW_BATTERY")

_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,32}")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_KINDS = ("vitals", "status")
_QUOTE = 60  # how much of a bad value an error message quotes


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE else text[:_QUOTE] + "..."


def parse_topic(topic: str, prefix: str, bay: str) -> tuple[str, str] | None:
    """``<prefix>/<bay>/<chair>/<kind>`` to ``(chair, kind)``, kind ``vitals`` or ``status``.

    None for a topic that is not ours (another prefix, bay or kind, another depth).
    ParseError ``bad_topic`` when the bay or chair segment is not ``[A-Za-z0-9_-]{1,32}``
    (an empty segment, a space, a non-ASCII letter...)."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != prefix or parts[3] not in _KINDS:
        return None
    for what, segment in (("bay", parts[1]), ("chair", parts[2])):
        if not _SEGMENT.fullmatch(segment):
            raise ParseError("bad_topic", f"topic {_short(topic)}: {what} {_short(segment)} is not "
                                          "1-32 letters, digits, '_' or '-'")
    if parts[1] != bay:
        return None
    return parts[2], parts[3]


def topic(prefix: str, bay: str, chair: str, kind: str = "vitals") -> str:
    """``<prefix>/<bay>/<chair>/<kind>``: the topic :func:`parse_topic` reads back."""
    for what, segment in (("bay", bay), ("chair", chair)):
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(f"{what} {segment!r} is not 1-32 letters, digits, '_' or '-'")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    return f"{prefix}/{bay}/{chair}/{kind}"


def _no_constants(name: str) -> Any:
    raise ParseError("bad_value", f"{name} is not a number a measurement can have")


def _finite(value: Any, reason: str, key: str, kind: str) -> float:
    """A JSON number as a finite float; ``ParseError(reason)`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError(reason, f"{key}: {_short(value)} is not {kind}")
    try:
        number = float(value)
    except OverflowError:
        raise ParseError(reason, f"{key}: {_short(value)} is out of range") from None
    if not math.isfinite(number):
        raise ParseError(reason, f"{key}: {_short(value)} is not finite")
    return number


def _number(key: str, value: Any) -> float | None:
    """A measurement value: a finite JSON number, or null."""
    return None if value is None else _finite(value, "bad_value", key, "a number or null")


def _time(value: Any) -> float:
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ParseError("bad_time", f"ts {_short(value)} is not an RFC 3339 time with an offset")
        try:
            return parse_rfc3339(value)
        except (ValueError, OverflowError) as exc:
            raise ParseError("bad_time", f"ts {_short(value)}: {exc}") from None
    return _finite(value, "bad_time", "ts", "RFC 3339 text or UNIX seconds")


def parse_vitals(payload: bytes) -> Frame:
    """One ``vitals`` payload to a Frame: values by parameter key (only the keys present;
    null gives None), flags as a QualityFlag mask, device, seq and the device time."""
    if len(payload) > MAX_PAYLOAD:
        raise ParseError("too_large", f"payload of {len(payload)} bytes (more than {MAX_PAYLOAD})")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("not_utf8", f"payload is not UTF-8 at byte {exc.start}") from None
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ParseError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ParseError("bad_json", f"payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError("malformed", f"payload is a JSON {type(data).__name__}, not an object")

    device = data.get("device")
    if not isinstance(device, str) or not 1 <= len(device) <= MAX_DEVICE:
        raise ParseError("bad_field", f"device {_short(device)} is not a string of 1-{MAX_DEVICE} "
                                      "characters")
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise ParseError("bad_field", f"seq {_short(seq)} is not a non-negative integer")
    if "ts" not in data:
        raise ParseError("bad_time", "ts is missing")
    t = _time(data["ts"])

    values: dict[str, float | None] = {}
    for key, param in VITALS_KEYS.items():
        if key in data:
            values[param] = _number(key, data[key])
    nibp = data.get("nibp")
    if nibp is not None:
        if not isinstance(nibp, dict):
            raise ParseError("bad_value", f"nibp {_short(nibp)} is not an object or null")
        for key, param in NIBP_KEYS.items():
            if key in nibp:
                values[param] = _number(f"nibp.{key}", nibp[key])

    names = data.get("flags")
    flags = 0
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ParseError("bad_value", f"flags {_short(names)} is not a list of names")
        try:
            flags = parse_flags(names)
        except ValueError as exc:
            raise ParseError("bad_value", f"flags: {exc}") from None
    return Frame(values, flags, device, seq, t)


def parse_status(payload: bytes) -> bool:
    """A ``status`` payload: True for ``online``, False for ``offline`` (case and surrounding
    blanks ignored). ParseError ``bad_status`` for anything else."""
    try:
        text = bytes(payload[:64]).decode("utf-8").strip().lower()
    except UnicodeDecodeError:
        text = ""
    if len(payload) <= 64 and text in ("online", "offline"):
        return text == "online"
    raise ParseError("bad_status", f"status {_short(bytes(payload[:_QUOTE]))} is not 'online' or 'offline'")


def format_vitals(frame: Frame) -> bytes:
    """A ``vitals`` payload for ``frame`` (device, seq and time required; the time written as
    RFC 3339 with milliseconds). NIBP goes as one ``nibp`` object of the keys given; flags
    outside :data:`FLAGS` are left out (the contract has no name for them). ValueError for
    what the payload cannot carry."""
    if frame.device is None or not 1 <= len(frame.device) <= MAX_DEVICE:
        raise ValueError(f"device must be 1-{MAX_DEVICE} characters, got {frame.device!r}")
    if frame.seq is None or not 0 <= frame.seq <= MAX_SEQ:
        raise ValueError(f"seq must be 0..2**63-1, got {frame.seq!r}")
    if frame.time is None:
        raise ValueError("a payload needs a time (ts)")
    payload: dict[str, object] = {"device": frame.device, "seq": frame.seq, "ts": rfc3339(frame.time)}
    nibp: dict[str, float | None] = {}
    params = {v: k for k, v in VITALS_KEYS.items()}
    nibp_keys = {v: k for k, v in NIBP_KEYS.items()}
    for key, number in frame.values.items():
        if number is not None and not math.isfinite(number):
            raise ValueError(f"{key}: {number!r} is not finite")
        if key in params:
            payload[params[key]] = number
        elif key in nibp_keys:
            nibp[nibp_keys[key]] = number
        else:
            raise ValueError(f"no payload key for {key!r}")
    if nibp:
        payload["nibp"] = nibp
    names = [n for n in flag_names(frame.flags) if n in FLAGS]
    if names:
        payload["flags"] = names
    data = json.dumps(payload, allow_nan=False).encode()
    if len(data) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(data)} bytes, more than {MAX_PAYLOAD}")
    return data


DIALECT = Dialect(
    name="mqtt-json",
    aliases=("mqtt",),
    transport="mqtt",
    title="MQTT JSON payload (chairside/<bay>/<chair>/vitals)",
    parse=parse_vitals,
    format=format_vitals,
    parameters=None,
    samples=(  # the contract's example (docs/protocols.md#mqtt)
        b'{"device": "rad97-0012", "seq": 1842, "ts": "2026-11-23T19:40:01.250Z", "hr": 72, "spo2": 98, '
        b'"pr": 71, "nibp": {"sys": 121, "dia": 79, "map": 93}, "flags": ["SENSOR_OFF"]}',
    ),
)
