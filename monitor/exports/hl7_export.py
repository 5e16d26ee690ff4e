"""HL7 v2.6 ORU^R01 messages in the IHE PCD-01 style, for an EMR interface engine.

**One message per minute** of the session (UTC minutes that hold readings): at 1 Hz a
message per reading time would be 43,200 messages for 12 hours, each repeating MSH, PID,
PV1 and OBR; a minute batch is the cadence device-integration interfaces commonly chart
at, and every OBX still carries its own time (OBX-14), so nothing is lost or averaged.

**File layout: MLLP frames**, one message per frame (``0x0B`` message ``0x1C 0x0D``),
segments ended by ``\\r`` as HL7 requires. The file is byte for byte what an interface
engine's MLLP listener takes (replay it with any MLLP sender), and it splits without
ambiguity (:func:`read_hl7_file`). For reading: ``tr '\\r\\013\\034' '\\n  ' < file``.

Each message::

    MSH|^~\\&|CHAIRSIDE|<bay>|||<export time>||ORU^R01^ORU_R01|<session><n>|P|2.6|||NE|AL||
        UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO
    PID|1||<patient label or MRN>||<patient label or MRN>^^^^^^D
    PV1|1|O|<bay>^^<chair>
    OBR|1|<session>^CHAIRSIDE|<session>-<n>^CHAIRSIDE|182777000^monitoring of patient^SCT|||
        <minute start>|<minute end>|||||||||||||||||<F, or P when partial>
    NTE|1||PARTIAL EXPORT ...                      (only when the session had not ended)
    OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.0.1|97|262688^MDC_DIM_PERCENT^MDC|||||F|||<time>||||<device>
    NTE|1||signal quality: LOW_PERFUSION            (after an OBX whose reading had flags)

- PID-5 (required in v2.6) is the patient label as a display name (name type ``D``):
  Chairside has the label the nurse entered, not the legal name; PID-3 is the same text.
- OBX-3 the parameter's preferred MDC code, OBX-6 the MDC unit code, OBX-14 the device time
  (``YYYYMMDDHHMMSS.SSS+0000``), OBX-18 the device that measured it (equipment instance id).
- OBX-4 ``<d>.0.0.<k>``: ``d`` numbers the devices of the message, ``k`` the device's rows,
  so that the same code at different times stays distinct.
- A reading without a value (sensor off) is an OBX with an empty OBX-5 and OBX-11 ``X``.
  A value from a device in demo mode has ``DEMO`` in OBX-8.
- OBR-25 (result status) is ``F`` for a session that had ended, ``P`` (preliminary) for a
  partial export, which also gets an NTE after the OBR saying so.
- MSH-10 (message control id) is the session id and the message's number: exporting the
  same session again gives the same ids, so an engine can drop duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from monitor.exports.report_data import SessionRecord, session_readings
from monitor.parameters import PARAMETERS
from monitor.readings import QualityFlag, Reading, flag_names
from monitor.store import Store
from wire.hl7.mllp import MllpDecoder, MllpProblem, frame
from wire.hl7.pcd01 import PCD01_PROFILE, obx_identifier, obx_unit
from wire.hl7.v2 import MessageHeader, dtm_formatter, format_dtm
from wire.hl7.v2 import escape as _esc

__all__ = ["PCD01_PROFILE", "read_hl7_file", "write_hl7"]

OBR_CODE = "182777000^monitoring of patient^SCT"
_FLUSH_BYTES = 1 << 16


def dtm(t: float) -> str:
    """UNIX seconds to an HL7 DTM with milliseconds and the UTC offset."""
    return format_dtm(t, millis=True)


def _control_base(session_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", session_id)[:14] or "CHAIRSIDE"


def write_hl7(store: Store, record: SessionRecord, out: BinaryIO) -> int:
    """The ``hl7`` format; returns the number of readings exported."""
    ctx = record.ctx
    s = ctx.session
    base = _control_base(s.id)
    bay = _esc(ctx.bay)
    msh_time = format_dtm(ctx.now)
    obx_code = {p.key: obx_identifier(p) for p in PARAMETERS}
    units = {p.key: obx_unit(p) for p in PARAMETERS}
    label = _esc(s.patient)
    pid = f"PID|1||{label}||{label}^^^^^^D"
    pv1 = f"PV1|1|O|{bay}^^{_esc(s.chair)}"
    status = "P" if ctx.partial else "F"
    partial_note = ""
    if ctx.partial:
        partial_note = ("NTE|1||" + _esc(f"PARTIAL EXPORT: session {s.id} had not ended when exported "
                                         f"at {dtm(ctx.now)}; readings up to then only"))
    obx_time = dtm_formatter()
    pending: list[bytes] = []
    size = 0
    n_messages = 0
    n_readings = 0

    def emit(minute: int, rows: list[Reading]) -> None:
        nonlocal size, n_messages
        n_messages += 1
        msh = MessageHeader(sending_application="CHAIRSIDE", sending_facility=bay, time=msh_time,
                            message_type="ORU^R01^ORU_R01", control_id=f"{base}{n_messages:06d}",
                            processing_id="P", version="2.6", accept_ack="NE", application_ack="AL",
                            charset="UNICODE UTF-8", profile=PCD01_PROFILE)
        segments = [
            msh.segment(),
            pid, pv1,
            f"OBR|1|{_esc(s.id)}^CHAIRSIDE|{_esc(s.id)}-{n_messages}^CHAIRSIDE|{OBR_CODE}|||"
            f"{dtm(minute * 60)}|{dtm(minute * 60 + 59.999)}" + "|" * 17 + status,
        ]
        if partial_note:
            segments.append(partial_note)
        device_index: dict[str, list[int]] = {}  # device -> [its number, rows so far]
        for i, r in enumerate(rows, start=1):
            slot = device_index.get(r.device)
            if slot is None:
                slot = device_index[r.device] = [len(device_index) + 1, 0]
            slot[1] += 1
            demo = "DEMO" if r.flags & QualityFlag.DEMO else ""
            if r.value is None:
                value, result_status = "", "X"
            else:
                value = str(int(r.value)) if r.value.is_integer() else repr(r.value)
                result_status = "F"
            segments.append(
                f"OBX|{i}|NM|{obx_code[r.parameter]}|{slot[0]}.0.0.{slot[1]}|{value}|{units[r.parameter]}"
                f"||{demo}|||{result_status}|||{obx_time(r.device_time)}||||{_esc(r.device)}")
            if r.flags & QualityFlag.MANUAL:
                segments.append("NTE|1||entered manually (a nurse's reading, not a device's)")
            quality = r.flags & ~QualityFlag.DEMO & ~QualityFlag.MANUAL
            if quality:
                segments.append("NTE|1||" + _esc("signal quality: " + ", ".join(flag_names(quality))))
        data = frame("\r".join(segments) + "\r")
        pending.append(data)
        size += len(data)
        if size >= _FLUSH_BYTES:
            flush()

    def flush() -> None:
        nonlocal size
        out.write(b"".join(pending))
        pending.clear()
        size = 0

    minute: int | None = None
    batch: list[Reading] = []
    for r in session_readings(store, ctx):
        if r.parameter not in obx_code:
            continue
        n_readings += 1
        m = int(r.device_time // 60)
        if m != minute:
            if batch:
                emit(minute, batch)  # type: ignore[arg-type]
            minute, batch = m, []
        batch.append(r)
    if batch:
        emit(minute, batch)  # type: ignore[arg-type]
    flush()
    return n_readings


def read_hl7_file(data: bytes) -> Iterator[str]:
    """The messages of an ``hl7`` export, as text with ``\\r`` segment separators."""
    decoder = MllpDecoder(max_message_bytes=16 << 20)
    for item in decoder.feed(data):
        if isinstance(item, MllpProblem):
            raise ValueError(f"not an MLLP-framed HL7 file: {item.reason} ({item.size} bytes)")
        yield item.decode("utf-8")
    problems = decoder.close()
    if problems:
        raise ValueError(f"not an MLLP-framed HL7 file: {problems[0].reason}")
