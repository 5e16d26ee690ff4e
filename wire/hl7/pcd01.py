"""IHE PCD-01 (HL7 v2 ORU^R01) messages to observations, and back.

Pure functions, no sockets: :func:`parse_pcd01` takes the text of one message (as carried by
one MLLP frame) and returns a :class:`Pcd01Message`; :func:`oru_r01` writes one (the
simulated gateway's, and the round-trip tests'); the answer is :mod:`wire.hl7.ack`'s.
Segments are split into flat field lists and times read by :mod:`wire.hl7.v2` (linear in
the message's size, components read only where needed); the rules below are PCD-01's. A message of more OBX
segments than the caller's ``max_observations`` is refused before any field is read.

What is taken from each OBX (docs/protocols.md#hl7):

- OBX-3: the parameter, by its IEEE 11073 MDC code (``150456^MDC_PULS_OXIM_SAT_O2^MDC``). A
  code given only by its reference id (``^MDC_PULS_OXIM_SAT_O2^MDC``, or a vendor-local
  identifier before it, or the code ``0``) is looked up by name. The CWE alternate triplet
  (OBX-3.4-6) is used when the primary one is not MDC. When the number and the name name
  different parameters of the table the observation is refused (``code_mismatch``). Codes
  not in the table (respiration, temperature, and the MDS/VMD/channel rows that describe
  the device hierarchy) are ignored, and counted as ``unknown_code`` only when they carry a
  numeric value.
- OBX-4: the PCD containment sub-id (``1.3.1.150456``, ``1.2.1.1``; trailing ``.0`` levels
  are the row's own level). A device-level row (one without a value) passes its OBX-18
  equipment id and an OBX-8 ``DEMO`` on to the rows below it; a device-level row without a
  sub-id passes them on to every row of the message.
- OBX-5: a plain HL7 NM decimal (``-12``, ``97``, ``36.5``; no exponent, no ``nan``). OBX-2
  is not checked: whatever it says, the value must be such a number. An empty value, an
  OBX-11 status ``X`` (cannot be obtained), ``D`` (deleted) or ``W`` (posted in error), or
  one of the IEEE 11073-20601 FLOAT special values (NaN, NRes, +/-INF: 8388607, -8388608,
  8388606, -8388606, -8388607) is not a measurement: skipped, counted as ``not_measured``.
- OBX-6: the unit, checked against :attr:`Parameter.unit_aliases` (lower case) by code
  number, reference id or UCUM text (``262688^MDC_DIM_PERCENT^MDC``, ``%^%^UCUM``,
  ``mm[Hg]``, ``/min``). A missing or different unit refuses the observation
  (``wrong_unit``): a value in the wrong unit is not a value.
- OBX-14, else the OBR-7 of the OBR the OBX belongs to, else MSH-7: the observation time,
  HL7 DTM ``YYYYMMDDHHMM[SS[.S[S[S[S]]]]][+/-ZZZZ]`` (at least to the minute). **A time
  without a UTC offset is taken as UTC**: PCD-01 gateways are expected to send the offset,
  and guessing the site's zone would silently shift every value; a gateway that sends local
  time without an offset must be configured to send UTC or an offset. (python-hl7's own
  ``parse_datetime`` is not used: it reads ``-0030`` as +00:30.)
- OBX-8 containing ``DEMO``: the observation gets :attr:`QualityFlag.DEMO`.
- OBX-18: the equipment instance id, returned for the listener's chair mapping, with MSH-3
  (sending application) and PV1-3 (bed location, trailing empty components removed).

Errors: :class:`Hl7ParseError` (a :class:`~monitor.seam.ParseError`) for a message that
cannot be taken at all, with ``reason`` one of ``not_hl7``, ``no_msh``, ``malformed``,
``unsupported_message``, ``too_many_observations``; it carries the MSH header when one
could be read, so that even a refused message is answered to its sender. Problems with
single observations do not raise: they are listed in :attr:`Pcd01Message.rejections`
(``wrong_unit``, ``bad_value``, ``bad_time``, ``code_mismatch``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.parameters import (
    MDC_DIM_BEAT_PER_MIN,
    MDC_DIM_MMHG,
    MDC_DIM_PERCENT,
    PARAMETERS,
    Parameter,
    by_key,
    by_mdc_code,
)
from monitor.readings import QualityFlag
from monitor.seam import Frame, ParseError
from wire.dialect import Dialect
from wire.hl7.v2 import Fields, MessageHeader, escape, format_dtm, normalise_segments, parse_dtm, read_header
from wire.numbers import format_decimal

__all__ = ["DIALECT", "PCD01_PROFILE", "Hl7ParseError", "Observation", "ObservationRejection", "Pcd01Message",
           "decode_message", "format_pcd01", "obx_identifier", "obx_unit", "oru_r01", "parse_pcd01"]

NOT_MEASURED_STATUSES = frozenset({"X", "D", "W"})
FLOAT_SPECIALS = frozenset({8388607.0, -8388608.0, 8388606.0, -8388606.0, -8388607.0})
#: MSH-21: the IHE PCD-01 message profile.
PCD01_PROFILE = "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
#: MDC unit codes -> their reference ids (the units of docs/protocols.md#parameters).
MDC_UNIT_NAMES = {MDC_DIM_BEAT_PER_MIN: "MDC_DIM_BEAT_PER_MIN", MDC_DIM_PERCENT: "MDC_DIM_PERCENT",
                  MDC_DIM_MMHG: "MDC_DIM_MMHG"}

_NM = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_BY_NAME: dict[str, Parameter] = {name: p for p in PARAMETERS for _, name in p.mdc_codes}
_ALL_UNITS: frozenset[str] = frozenset().union(*(p.unit_aliases for p in PARAMETERS))


class Hl7ParseError(ParseError):
    """A message that cannot be taken. ``header`` is its MSH, when that could be read;
    ``hl7_code`` the HL7 table 0357 error code for the ACK's ERR-3."""

    def __init__(self, reason: str, message: str, header: MessageHeader | None = None,
                 hl7_code: str = "207") -> None:
        super().__init__(reason, message)
        self.header = header
        self.hl7_code = hl7_code


@dataclass(frozen=True, slots=True)
class Observation:
    parameter: str  # a key of monitor.parameters
    value: float
    unit: str  # OBX-6 as sent
    time: float  # UNIX seconds
    equipment: str | None  # OBX-18 as sent (own, or inherited from a device-level row)
    flags: int = 0  # QualityFlag bits
    code: int | None = None  # the MDC code, when it was given as a number
    set_id: str = ""  # OBX-1
    sub_id: str = ""  # OBX-4
    segment: int = 0  # position among the message's OBX segments (1-based), for ERR-2


@dataclass(frozen=True, slots=True)
class ObservationRejection:
    reason: str  # counter key: wrong_unit, bad_value, bad_time, code_mismatch
    detail: str
    segment: int = 0  # position among the OBX segments (1-based)
    field: int = 0  # the OBX field at fault
    parameter: str | None = None

    @property
    def location(self) -> str:
        """ERR-2 (ERL): ``OBX^<sequence>^<field>``."""
        return f"OBX^{self.segment}^{self.field}" if self.segment else ""


@dataclass(frozen=True, slots=True)
class Pcd01Message:
    header: MessageHeader
    bed: str  # PV1-3 as sent, trailing empty components removed ("" if none)
    observations: tuple[Observation, ...]
    rejections: tuple[ObservationRejection, ...]
    not_measured: int = 0
    unknown_codes: int = 0

    @property
    def control_id(self) -> str:
        return self.header.control_id

    @property
    def message_type(self) -> str:
        return self.header.kind

    @property
    def sending_application(self) -> str:
        return self.header.sending_application


# --- parsing -----------------------------------------------------------------------------


def _strip_trailing(raw: str, seps: str) -> str:
    return raw.rstrip(seps + " ")


def _sub_path(sub_id: str) -> tuple[str, ...]:
    """``1.2.1.0`` -> ``('1', '2', '1')``: the containment path without its own-level 0s."""
    parts = [p.strip() for p in sub_id.split(".")] if sub_id.strip() else []
    while parts and parts[-1] in ("0", ""):
        parts.pop()
    return tuple(parts)


def _ancestors(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The path's proper ancestors, nearest first, each without own-level 0s."""
    out = []
    for i in range(len(path) - 1, -1, -1):
        p = _sub_path(".".join(path[:i]))
        if p not in out:
            out.append(p)
    if () not in out:
        out.append(())
    return out


def _identify(codes: list[str]) -> tuple[Parameter | None, int | None, str]:
    """OBX-3 components to (parameter, code, problem). ``problem`` is "" or a mismatch."""
    triplets = [codes[0:3], codes[3:6]]
    for i, (ident, name, system) in enumerate([*t, "", "", ""][:3] for t in triplets):
        system = system.upper()
        if not (system == "MDC" or (i == 0 and system == "" and (ident or name))):
            continue
        number = int(ident) if ident.isdigit() and int(ident) != 0 else None
        by_number = by_mdc_code(number) if number is not None else None
        by_name = _BY_NAME.get(name.upper()) if name else None
        if by_number is not None and by_name is not None and by_number is not by_name:
            return None, number, f"code {number} is {by_number.key} but {name} is {by_name.key}"
        if number is not None and by_number is None and by_name is not None:
            return None, number, f"code {number} is not {name} ({by_name.key})"
        if by_number is not None or by_name is not None:
            return by_number or by_name, number, ""
        if number is not None or name:
            return None, number, ""
    return None, None, ""


def _unit_ok(param: Parameter, comps: list[str]) -> bool:
    """True if some component of OBX-6 (code, text, alternate code/text) is a spelling of
    the parameter's unit and none is a spelling of another parameter's unit."""
    names = [c.lower() for i, c in enumerate(comps[:6]) if i in (0, 1, 3, 4) and c]
    known = [n for n in names if n in _ALL_UNITS]
    return bool(known) and all(n in param.unit_aliases for n in known)


def decode_message(text: str | bytes) -> str:
    """A message's text: UTF-8, else HL7 v2's traditional 8859-1 (MSH-18 8859/1)."""
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return text.decode("latin-1")


def parse_pcd01(text: str | bytes, max_observations: int | None = None) -> Pcd01Message:
    """Parse one ORU^R01 message. Raises :class:`Hl7ParseError`; with ``max_observations``,
    also for a message of more OBX segments than that (``too_many_observations``, found
    before any field is read)."""
    norm = normalise_segments(decode_message(text))
    if not norm:
        raise Hl7ParseError("not_hl7", "empty message", hl7_code="100")
    segments = norm.split("\r")
    if not norm.startswith("MSH"):
        looks_hl7 = len(segments[0]) >= 4 and _SEGMENT_ID.fullmatch(segments[0][:3]) \
            and not segments[0][3].isalnum()
        if looks_hl7:
            raise Hl7ParseError("no_msh", f"first segment is {segments[0][:3]}, not MSH",
                                hl7_code="100")
        raise Hl7ParseError("not_hl7", f"not an HL7 message: {norm[:40]!r}", hl7_code="100")
    header = read_header(norm)
    if header is None:
        raise Hl7ParseError("malformed", f"unreadable MSH segment: {segments[0][:60]!r}",
                            hl7_code="102")
    if sum(s.startswith("MSH" + header.field_sep) for s in segments) > 1:
        raise Hl7ParseError("malformed", "more than one MSH in one frame", header, "100")
    for s in segments:
        if not (_SEGMENT_ID.fullmatch(s[:3]) and (len(s) == 3 or s[3] == header.field_sep)):
            raise Hl7ParseError("malformed", f"not a segment: {s[:40]!r}", header, "100")
    if header.kind != "ORU^R01":
        code = "201" if header.kind.startswith("ORU") else "200"
        raise Hl7ParseError("unsupported_message",
                            f"message type {header.kind or '(none)'} is not ORU^R01", header, code)
    if not header.control_id:
        raise Hl7ParseError("malformed", "MSH-10 (message control id) is empty", header, "101")
    if max_observations is not None:
        n_obx = sum(1 for s in segments if s.startswith("OBX"))
        if n_obx > max_observations:
            raise Hl7ParseError("too_many_observations", f"{n_obx} OBX segments, over the limit of "
                                f"{max_observations} per message", header, "207")
    f = Fields(header.field_sep, header.encoding)
    try:
        return _observations(f, [f.split(s) for s in segments], header)
    except Exception as exc:  # a structure these rules cannot read
        raise Hl7ParseError("malformed", f"unreadable message: {exc!r}", header, "102") from None


@dataclass(slots=True)
class _Row:
    segment: int
    seg: list[str]
    path: tuple[str, ...]
    obr_time: str


def _observations(f: Fields, segments: list[list[str]], header: MessageHeader) -> Pcd01Message:
    msh_time = f.first(segments[0], 7)  # the first segment is the MSH
    bed = ""
    rows: list[_Row] = []
    obr_time = ""
    n_obx = 0
    for seg in segments:
        sid = seg[0]
        if sid == "PV1" and not bed:
            bed = _strip_trailing(f.raw(seg, 3).split(f.rep, 1)[0], f.comp + f.sub)
        elif sid == "OBR":
            obr_time = f.first(seg, 7)
        elif sid == "OBX":
            n_obx += 1
            rows.append(_Row(n_obx, seg, _sub_path(f.first(seg, 4)), obr_time))

    # device-level rows (no value, no parameter of the table) hand their equipment id and
    # DEMO down the containment hierarchy
    equipment_at: dict[tuple[str, ...], str] = {}
    demo_at: set[tuple[str, ...]] = set()
    idents = {row.segment: _identify(f.components(row.seg, 3)) for row in rows}
    values = {row.segment: f.raw(row.seg, 5).strip() for row in rows}
    for row in rows:
        if values[row.segment] or idents[row.segment][0] is not None:
            continue
        eq = _strip_trailing(f.raw(row.seg, 18), f.comp + f.sub + f.rep)
        if eq and row.path not in equipment_at:
            equipment_at[row.path] = eq
        if _is_demo(f, row.seg):
            demo_at.add(row.path)

    observations: list[Observation] = []
    rejections: list[ObservationRejection] = []
    not_measured = unknown = 0
    for row in rows:
        seg, n = row.seg, row.segment
        raw_value = values[n]
        param, code, problem = idents[n]
        label = f"OBX {n} ({f.raw(seg, 3) or 'no OBX-3'})"
        if problem:
            rejections.append(ObservationRejection("code_mismatch", f"{label}: {problem}", n, 3))
            continue
        if param is None:
            if raw_value and _NM.fullmatch(raw_value):
                unknown += 1
            continue
        status = f.first(seg, 11).upper()
        if not raw_value or status in NOT_MEASURED_STATUSES:
            not_measured += 1
            continue
        if not _NM.fullmatch(raw_value):
            rejections.append(ObservationRejection(
                "bad_value", f"{label}: value {raw_value[:40]!r} is not a number", n, 5, param.key))
            continue
        value = float(raw_value)
        if value in FLOAT_SPECIALS:
            not_measured += 1
            continue
        unit_raw = f.raw(seg, 6)
        if not _unit_ok(param, f.components(seg, 6)):
            rejections.append(ObservationRejection(
                "wrong_unit", f"{label}: unit {unit_raw or '(none)'!r} is not {param.unit} "
                f"({param.key})", n, 6, param.key))
            continue
        when, where = f.first(seg, 14), 14
        if not when:
            when, where = row.obr_time, 0
        if not when:
            when, where = msh_time, 0
        try:
            t = parse_dtm(when)
        except ValueError as exc:
            detail = f"{label}: {exc}" if when else f"{label}: no OBX-14, OBR-7 or MSH-7 time"
            rejections.append(ObservationRejection("bad_time", detail, n, where or 14, param.key))
            continue
        ancestors = _ancestors(row.path)
        equipment = _strip_trailing(f.raw(seg, 18), f.comp + f.sub + f.rep) or next(
            (equipment_at[a] for a in ancestors if a in equipment_at), None)
        flags = 0
        if _is_demo(f, seg) or any(a in demo_at for a in ancestors):
            flags |= QualityFlag.DEMO
        observations.append(Observation(
            param.key, value, unit_raw, t, equipment, int(flags), code, f.raw(seg, 1).strip(),
            f.raw(seg, 4).strip(), n))
    return Pcd01Message(header, bed, tuple(observations), tuple(rejections), not_measured, unknown)


def _is_demo(f: Fields, seg: list[str]) -> bool:
    return any("DEMO" in r.upper() for r in f.repetitions(seg, 8))


# --- writing -----------------------------------------------------------------------------


def obx_identifier(param: Parameter) -> str:
    """OBX-3 for a parameter: its preferred MDC code, ``150456^MDC_PULS_OXIM_SAT_O2^MDC``."""
    code, ref = param.mdc_codes[0]
    return f"{code}^{ref}^MDC"


def obx_unit(param: Parameter) -> str:
    """OBX-6 for a parameter: its MDC unit, ``262688^MDC_DIM_PERCENT^MDC``."""
    return f"{param.mdc_unit}^{MDC_UNIT_NAMES[param.mdc_unit]}^MDC"


def oru_r01(values: Mapping[str, float | None], flags: int, t: float, *, control_id: str, bed: str,
            device: str, sending_application: str = "") -> str:
    """An IHE PCD-01 ORU^R01 message as a monitor gateway sends it: one OBX per value (no
    OBX for a missing value or a key without an MDC code), each with OBX-14 ``t`` and
    OBX-18 ``device``; PV1-3 ``bed`` (as sent: its components are the caller's); ``DEMO``
    in OBX-8 when ``flags`` has :attr:`QualityFlag.DEMO`. Segments end with ``\\r``."""
    when = format_dtm(t)
    device_id = escape(device)
    header = MessageHeader(
        sending_application=sending_application or f"CHAIRSIDE_SIM^{device_id}^EUI-64",
        sending_facility="SIM", receiving_application="CHAIRSIDE", receiving_facility="CHAIRSIDE",
        time=when, message_type="ORU^R01^ORU_R01", control_id=escape(control_id), processing_id="P",
        version="2.6", accept_ack="AL", application_ack="NE", charset="UNICODE UTF-8",
        profile=PCD01_PROFILE)
    segments = [
        header.segment(),
        f"PID|||{device_id}-patient^^^SIM^PI||SIMULATED^PATIENT",
        f"PV1||O|{bed}",
        f"OBR|1|{header.control_id}^SIM|{header.control_id}^SIM|182777000^monitoring of patient^SNOMED-CT"
        f"|||{when}",
    ]
    demo = "DEMO" if flags & QualityFlag.DEMO else ""
    n = 0
    for key, value in values.items():
        param = by_key(key)
        if param is None or value is None:
            continue
        n += 1
        code = param.mdc_codes[0][0]
        segments.append(f"OBX|{n}|NM|{obx_identifier(param)}|1.1.1.{code}|{format_decimal(value)}|"
                        f"{obx_unit(param)}||{demo}|||R|||{when}||||{device_id}^^0001^EUI-64")
    return "\r".join(segments) + "\r"


def format_pcd01(frame: Frame) -> str:
    """:func:`oru_r01` of a Frame: its values, flags, time and device (required), with
    ``extra["control_id"]`` (default ``<device>-<seq>``) and ``extra["bed"]``."""
    if frame.time is None or not frame.device:
        raise ValueError("an ORU^R01 needs a time and a device")
    control_id = str(frame.extra.get("control_id") or f"{frame.device}-{frame.seq or 0}")
    return oru_r01(frame.values, frame.flags, frame.time, control_id=control_id,
                   bed=str(frame.extra.get("bed", "")), device=frame.device)


DIALECT = Dialect(
    name="hl7",
    transport="hl7",
    title="HL7 v2 ORU^R01 (IHE PCD-01), MLLP-framed or one message per blank-line block",
    parse=parse_pcd01,
    format=format_pcd01,
    parameters=None,
    samples=(  # synthetic, in the layout of the IHE PCD Technical Framework's examples
        "MSH|^~\\&|GW^0123456789ABCDEF^EUI-64|ICU|CHAIRSIDE|CHAIRSIDE|20261123194001+0000||ORU^R01^ORU_R01|"
        "MSG0001|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO\r"
        "PID|||12345^^^HOSP^MR||DOE^JANE\rPV1||O|INF^^CH04\r"
        "OBR|1|MSG0001^GW|MSG0001^GW|182777000^monitoring of patient^SNOMED-CT|||20261123194001+0000\r"
        "OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.150456|97|262688^MDC_DIM_PERCENT^MDC|||||R|||"
        "20261123194001+0000||||0123456789ABCDEF^^0001^EUI-64\r",
    ),
)
