"""HL7 v2 text: segments split into fields, components and escapes read on demand.

A segment is one flat ``list[str]`` of its fields, indexed by HL7 field number (MSH is
indexed as HL7 counts it: ``seg[1]`` is the field separator, ``seg[2]`` the encoding
characters, ``seg[3]`` MSH-3). Components, repetitions and escapes are read only for the
fields asked for. So a message costs one ``str.split`` and one list per segment: parsing is
linear in its size, and a message of thousands of OBX segments builds thousands of objects
for the garbage collector to track, not hundreds of thousands. (python-hl7's ``hl7.parse``
builds a container object for every field, repetition and component, some 28 per OBX, and
the collector's passes over them made its time per OBX grow with the message.)
"""

from __future__ import annotations

__all__ = ["Fields", "unescape"]


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
