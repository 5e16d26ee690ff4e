"""HL7 v2 basics, written once for the listener, the ACKs, the exports and the simulators:
separators, splitting and field access, escaping both ways, the MSH segment (read and
written) and DTM times (read and written).

A segment is one flat ``list[str]`` of its fields, indexed by HL7 field number (MSH is
indexed as HL7 counts it: ``seg[1]`` is the field separator, ``seg[2]`` the encoding
characters, ``seg[3]`` MSH-3). Components, repetitions and escapes are read only for the
fields asked for. So a message costs one ``str.split`` and one list per segment: parsing is
linear in its size, and a message of thousands of OBX segments builds thousands of objects
for the garbage collector to track, not hundreds of thousands. (python-hl7's ``hl7.parse``
builds a container object for every field, repetition and component, some 28 per OBX, and
the collector's passes over them made its time per OBX grow with the message.)

Times: HL7 DTM ``YYYYMMDDHHMM[SS[.S[S[S[S]]]]][+/-ZZZZ]``. **A time without a UTC offset is
read as UTC** (:func:`parse_dtm`; see :mod:`wire.hl7.pcd01` for why); Chairside writes every
time in UTC with ``+0000`` (:func:`format_dtm`). (python-hl7's own ``parse_datetime`` is not
used: it reads ``-0030`` as +00:30.)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from monitor.timefmt import Rfc3339Formatter

__all__ = [
    "DEFAULT_ENCODING",
    "Fields",
    "MessageHeader",
    "dtm_formatter",
    "escape",
    "escaper",
    "format_dtm",
    "id_candidates",
    "message_key",
    "normalise_segments",
    "parse_dtm",
    "read_header",
    "unescape",
]

#: MSH-2: component, repetition, escape and subcomponent separators.
DEFAULT_ENCODING = "^~\\&"
_DTM = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?"
                  r"(?:([+-])(\d{2})(\d{2}))?")
_DEFAULT_SPECIALS = re.compile(r"[\\|^&~\r\n]")


class Fields:
    """Splitting and field access in one message's separators (MSH-1 and MSH-2; missing
    encoding characters take their defaults ``^~\\&``)."""

    __slots__ = ("comp", "esc", "field_sep", "rep", "seps", "sub")

    def __init__(self, field_sep: str = "|", encoding: str = "^~\\&") -> None:
        self.field_sep = field_sep
        self.comp, self.rep, self.esc, self.sub = (encoding + "^~\\&"[len(encoding):])[:4]
        self.seps = field_sep + self.rep + self.comp + self.sub  # the order unescape reads

    def split(self, segment: str) -> list[str]:
        """One segment's fields, indexed by field number."""
        fields = segment.split(self.field_sep)
        if fields[0] == "MSH":
            fields.insert(1, self.field_sep)
        return fields

    @staticmethod
    def raw(seg: list[str], n: int) -> str:
        """Field ``n`` as sent (escaped; "" when the segment is shorter)."""
        return seg[n] if n < len(seg) else ""

    def text(self, raw: str) -> str:
        return unescape(raw, self.esc, self.seps) if self.esc in raw else raw

    def components(self, seg: list[str], n: int) -> list[str]:
        """Components of the field's first repetition, unescaped (subcomponents kept)."""
        raw = self.raw(seg, n).split(self.rep, 1)[0]
        return [self.text(c).strip() for c in raw.split(self.comp)]

    def first(self, seg: list[str], n: int) -> str:
        return self.components(seg, n)[0]

    def repetitions(self, seg: list[str], n: int) -> list[str]:
        return [self.text(r) for r in self.raw(seg, n).split(self.rep)]


def unescape(raw: str, esc: str, seps: str) -> str:
    """HL7 escape sequences in ``raw``: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ and \\Xhh..\\ become their
    characters; formatting and character-set sequences (\\H\\, \\.br\\, \\C..\\, \\Z..\\) are
    dropped. ``seps``: field, repetition, component and subcomponent separators. (python-hl7's
    unescape logs an ERROR for every odd sequence a sender makes.)"""
    field_sep, rep, comp, sub = (seps + "|~^&")[:4]
    chars = {"F": field_sep, "S": comp, "T": sub, "R": rep, "E": esc}
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        end = raw.find(esc, i + 1) if c == esc else -1
        if end < 0:
            out.append(c)
            i += 1
            continue
        seq = raw[i + 1:end]
        if seq in chars:
            out.append(chars[seq])
        elif seq[:1] == "X" and len(seq) % 2 == 1 and all(h in "0123456789abcdefABCDEF" for h in seq[1:]):
            out.append(bytes.fromhex(seq[1:]).decode("latin-1"))
        i = end + 1
    return "".join(out)


def escaper(field_sep: str = "|", encoding: str = DEFAULT_ENCODING) -> Callable[[str], str]:
    """The escaping for these separators: plain text to an HL7 field value (separators and
    the escape character escaped, line breaks made spaces)."""
    comp, rep, esc, sub = (encoding + "^~\\&"[len(encoding):])[:4]
    table = {esc: f"{esc}E{esc}", field_sep: f"{esc}F{esc}", comp: f"{esc}S{esc}",
             sub: f"{esc}T{esc}", rep: f"{esc}R{esc}"}
    specials = _DEFAULT_SPECIALS if (field_sep, encoding) == ("|", DEFAULT_ENCODING) else \
        re.compile("[" + re.escape("".join(table) + "\r\n") + "]")

    def escape(text: str) -> str:
        if not specials.search(text):
            return text
        text = " ".join(text.replace("\r", "\n").split("\n"))
        return "".join(table.get(c, c) for c in text)

    return escape


#: :func:`escaper` for the default separators ``|^~\\&``.
escape = escaper()


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """The MSH fields an ACK needs, as sent (still escaped, in the sender's separators)."""

    field_sep: str = "|"
    encoding: str = "^~\\&"  # component, repetition, escape, subcomponent
    sending_application: str = ""  # MSH-3
    sending_facility: str = ""  # MSH-4
    receiving_application: str = ""  # MSH-5
    receiving_facility: str = ""  # MSH-6
    time: str = ""  # MSH-7
    message_type: str = ""  # MSH-9 as sent, e.g. ORU^R01^ORU_R01
    control_id: str = ""  # MSH-10
    processing_id: str = ""  # MSH-11
    version: str = ""  # MSH-12
    accept_ack: str = ""  # MSH-15
    application_ack: str = ""  # MSH-16
    charset: str = ""  # MSH-18
    profile: str = ""  # MSH-21 (message profile identifier)

    @property
    def component_sep(self) -> str:
        return self.encoding[0] if self.encoding else "^"

    @property
    def kind(self) -> str:
        """Message code and trigger event, always written ``ORU^R01``."""
        parts = self.message_type.split(self.component_sep)
        return "^".join(p for p in parts[:2] if p)

    def segment(self) -> str:
        """The MSH segment of this header (fields as they are: escape them before)."""
        fs = self.field_sep
        fields = ["MSH", self.encoding, self.sending_application, self.sending_facility,
                  self.receiving_application, self.receiving_facility, self.time, "",
                  self.message_type, self.control_id, self.processing_id, self.version, "", "",
                  self.accept_ack, self.application_ack, "", self.charset, "", "", self.profile]
        while fields[-1] == "":
            fields.pop()
        return fs.join(fields)


def normalise_segments(text: str) -> str:
    """Segments separated by ``\\r`` only (python-hl7's separator): ``\\r\\n`` and ``\\n``
    become ``\\r``, blank segments and surrounding blanks go."""
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return "\r".join(line.strip() for line in lines if line.strip())


def message_key(header: MessageHeader, text: str) -> str:
    """What identifies one message when it is sent again (SHA-256, hex): its sender (MSH-3,
    MSH-4), its control id (MSH-10) and every segment after MSH as sent. The rest of MSH
    (its time, MSH-7) may be written afresh on a resend; a control id a sender reuses
    (counting from 1 again after a restart) with other content is another message."""
    body = normalise_segments(text).split("\r", 1)[1:]
    ident = "\x1f".join((header.sending_application, header.sending_facility, header.control_id))
    return hashlib.sha256(f"{ident}\r{''.join(body)}".encode()).hexdigest()


def read_header(text: str) -> MessageHeader | None:
    """The MSH of a message, read without python-hl7 (also from the first bytes of a
    message too long to take, or one python-hl7 cannot parse). None if there is none."""
    first = text.lstrip().replace("\r\n", "\r").replace("\n", "\r").split("\r", 1)[0]
    if len(first) < 8 or not first.startswith("MSH"):
        return None
    sep = first[3]
    if sep.isalnum() or sep.isspace():
        return None
    fields = first.split(sep)  # fields[n - 1] is MSH-n for n >= 2
    encoding = fields[1]
    if not 2 <= len(encoding) <= 5 or len(set(encoding + sep)) != len(encoding) + 1 \
            or any(c.isalnum() or c.isspace() for c in encoding):
        return None

    def f(n: int) -> str:
        return fields[n - 1] if n - 1 < len(fields) else ""

    return MessageHeader(sep, encoding, f(3), f(4), f(5), f(6), f(7), f(9), f(10), f(11), f(12),
                         f(15), f(16), f(18), f(21))


def parse_dtm(text: str) -> float:
    """An HL7 DTM (at least to the minute) to UNIX seconds; no offset means UTC.
    Raises ValueError."""
    m = _DTM.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an HL7 time YYYYMMDDHHMM[SS[.SSSS]][+/-ZZZZ]: {text!r}")
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    tz = UTC
    if sign:
        offset = timedelta(hours=int(oh), minutes=int(om))
        if int(om) >= 60 or offset >= timedelta(hours=24):
            raise ValueError(f"bad UTC offset in {text!r}")
        tz = timezone(-offset if sign == "-" else offset)
    micro = int((frac or "0").ljust(6, "0"))
    value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                     micro, tzinfo=tz)
    return value.timestamp()


def id_candidates(raw: str | None, component_sep: str = "^") -> list[str]:
    """The keys a device or bed id is looked up by: as sent, then each non-empty
    component (``VSP^080019FFFE0B4020^EUI-64`` -> itself, ``VSP``, ``080019FFFE0B4020``,
    ``EUI-64``)."""
    if not raw:
        return []
    raw = raw.strip()
    out = [raw]
    for part in raw.split(component_sep):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def format_dtm(t: float, *, millis: bool = False) -> str:
    """UNIX seconds to an HL7 DTM in UTC: ``YYYYMMDDHHMMSS+0000``, or with ``millis``
    ``YYYYMMDDHHMMSS.SSS+0000`` (milliseconds truncated, as :func:`dtm_formatter`)."""
    if millis:
        return dtm_formatter()(t)
    return datetime.fromtimestamp(t, UTC).strftime("%Y%m%d%H%M%S") + "+0000"


def dtm_formatter() -> Callable[[float], str]:
    """``format_dtm(t, millis=True)`` for long runs of times (exports): the date and time of
    day formatted once per second rather than once per call."""
    return Rfc3339Formatter("%Y%m%d%H%M%S", "+0000")
