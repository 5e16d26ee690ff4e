"""HL7 v2 acknowledgements: :func:`build_ack` answers a message (original mode, ``MSA`` and
``ERR`` segments), :func:`read_ack` reads an answer (for the simulated gateway and tests).

The MSH of an ACK mirrors the message's (:class:`~wire.hl7.v2.MessageHeader`): sending and
receiving sides swapped, the sender's separators, trigger event, processing id and version.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.seam import ParseError
from wire.hl7.v2 import Fields, MessageHeader, escaper, format_dtm, normalise_segments, read_header

__all__ = ["ACK_CODES", "AckError", "AckInfo", "build_ack", "read_ack"]

ACK_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})
MSA_TEXT_MAX = 80  # MSA-3 is ST(80) in v2.3-2.6
MAX_ERR_SEGMENTS = 20


@dataclass(frozen=True, slots=True)
class AckError:
    """One ERR segment: our reason key (ERR-5), a human text (ERR-8), the HL7 table 0357
    code (ERR-3), severity E (error) or W (warning, in an AA) and the ERR-2 location."""

    reason: str
    text: str = ""
    hl7_code: str = "207"
    severity: str = "E"
    location: str = ""


_HL7_ERRORS = {
    "0": "Message accepted", "100": "Segment sequence error", "101": "Required field missing",
    "102": "Data type error", "103": "Table value not found", "200": "Unsupported message type",
    "201": "Unsupported event code", "202": "Unsupported processing id",
    "203": "Unsupported version id", "204": "Unknown key identifier", "205": "Duplicate key",
    "206": "Application record locked", "207": "Application internal error",
}
_ack_seq = itertools.count(1)


def build_ack(control_id: str, code: str, text: str = "", error_code: str | None = None, *,
              reason: str = "", errors: Sequence[AckError] = (), header: MessageHeader | None = None,
              now: float | None = None, ack_control_id: str | None = None,
              application: str = "CHAIRSIDE") -> str:
    """An original-mode ACK for message ``control_id`` (segments ended by ``\\r``).

    ``code``: AA, AE or AR (or the enhanced-mode CA/CE/CR). ``text`` goes to MSA-3 (cut to
    80 characters) and, for AE/AR without explicit ``errors``, to one ERR segment with
    ``error_code`` (HL7 table 0357; default 207) and ``reason`` (our counter key, ERR-5).
    ``errors`` adds ERR segments (severity W ones may go with an AA). With ``header`` (the
    MSH of the message answered) the ACK swaps its sending and receiving application and
    facility, uses its separators, trigger event, processing id and version; without it,
    the receiving side is left empty. Plain text is escaped for HL7.
    """
    if code not in ACK_CODES:
        raise ValueError(f"ACK code must be one of {sorted(ACK_CODES)}, not {code!r}")
    h = header or MessageHeader()
    fs, enc = h.field_sep, h.encoding
    esc = escaper(fs, enc)
    comp = h.component_sep
    parts = h.message_type.split(comp)
    trigger = parts[1] if len(parts) > 1 else ""
    when = format_dtm(time.time() if now is None else now)
    ack_id = ack_control_id or f"CHS{when[:14]}{next(_ack_seq) % 1_000_000:06d}"
    msh = MessageHeader(
        fs, enc, h.receiving_application or esc(application), h.receiving_facility,
        h.sending_application, h.sending_facility, when,
        comp.join(["ACK", trigger, "ACK"]) if trigger else "ACK", esc(ack_id),
        h.processing_id or "P", h.version or "2.6")
    segments = [msh.segment(), fs.join(["MSA", code, esc(control_id), esc(text[:MSA_TEXT_MAX])]).rstrip(fs)]
    errs = list(errors)
    if not errs and code not in ("AA", "CA") and (text or error_code or reason):
        errs = [AckError(reason, text, error_code or "207")]
    for e in errs[:MAX_ERR_SEGMENTS]:
        hl7_code = e.hl7_code if e.hl7_code in _HL7_ERRORS else "207"
        location = comp.join(esc(p) for p in e.location.split("^")) if e.location else ""
        app_code = comp.join([esc(e.reason), "", "99CHAIRSIDE"]) if e.reason else ""
        segments.append(fs.join([
            "ERR", "", location, comp.join([hl7_code, _HL7_ERRORS[hl7_code], "HL70357"]),
            e.severity, app_code, "", "", esc(e.text),
        ]).rstrip(fs))
    return "\r".join(segments) + "\r"


@dataclass(frozen=True, slots=True)
class AckInfo:
    code: str  # MSA-1
    control_id: str  # MSA-2
    text: str  # MSA-3
    reasons: tuple[str, ...]  # ERR-5.1 of each ERR
    errors: tuple[str, ...]  # ERR-8 of each ERR
    severities: tuple[str, ...]  # ERR-4 of each ERR


def read_ack(text: str) -> AckInfo:
    """The acknowledgement code, control id, text and errors of an ACK (for simulators and
    tests). Raises ParseError if it is not one."""
    norm = normalise_segments(text)
    header = read_header(norm)
    if header is None:
        raise ParseError("not_hl7", f"not an HL7 ACK: {text[:40]!r}")
    f = Fields(header.field_sep, header.encoding)
    segments = [f.split(s) for s in norm.split("\r")]
    msa = next((s for s in segments if s[0] == "MSA"), None)
    if msa is None:
        raise ParseError("malformed", "ACK without an MSA segment")
    errs = [s for s in segments if s[0] == "ERR"]
    return AckInfo(f.text(f.raw(msa, 1)), f.text(f.raw(msa, 2)), f.text(f.raw(msa, 3)),
                   tuple(f.first(s, 5) for s in errs), tuple(f.text(f.raw(s, 8)) for s in errs),
                   tuple(f.raw(s, 4) for s in errs))
