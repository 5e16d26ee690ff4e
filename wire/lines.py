"""Cutting a serial byte stream into lines (docs/protocols.md#serial-lines).

Pure: no port, no clock. The serial source feeds whatever bytes a read returns; the
splitter keeps the partial line between feeds and hands back complete, decoded lines and
the lines it had to drop (as :class:`LineError`, for the rejection counters).

Rules:

- A line ends at LF; one CR just before the LF is part of the terminator (CR LF works).
- Lines that are empty or hold only blanks (space, tab, CR) are skipped silently: some
  devices send blank lines between records, or LF CR instead of CR LF.
- A line longer than ``max_line`` bytes (512, terminator excluded) is dropped and reported
  once as ``too_long``; everything up to the next LF is discarded, then reading resumes
  (resynchronisation). Memory is bounded: at most ``max_line + 1`` bytes of a partial line
  are ever kept (the one extra byte is a possible CR of a CR LF split across two reads).
- A line that is not valid UTF-8 (ASCII is a subset) is dropped and reported as ``not_utf8``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_LINE", "LineError", "LineSplitter"]

#: Longest line taken, in bytes, not counting the CR LF / LF terminator.
MAX_LINE = 512

_DETAIL_BYTES = 40  # how much of a dropped line a LineError quotes


@dataclass(frozen=True, slots=True)
class LineError:
    """A line the splitter dropped. ``reason`` (``too_long``, ``not_utf8``) is the counter
    key, as for :class:`monitor.seam.ParseError`; ``detail`` says more."""

    reason: str
    detail: str


class LineSplitter:
    """Feed it byte chunks of any size; it returns the complete lines they finish."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes until the next LF

    @property
    def buffered(self) -> int:
        """Bytes of a partial line held now (never more than ``max_line + 1``)."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial line (e.g. after the port was reopened)."""
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[str | LineError]:
        data = bytes(data)
        out: list[str | LineError] = []
        start, size = 0, len(data)
        limit = self.max_line + 1  # a partial line may end in the CR of a CR LF
        while start < size:
            nl = data.find(b"\n", start)
            end = size if nl < 0 else nl
            if self._discarding:
                if nl < 0:
                    break
                self._discarding = False
            elif len(self._buf) + (end - start) > limit:
                head = (bytes(self._buf) + data[start:start + _DETAIL_BYTES])[:_DETAIL_BYTES]
                out.append(LineError(
                    "too_long", f"line longer than {self.max_line} bytes dropped (starts {head!r})"))
                self._buf.clear()
                if nl < 0:
                    self._discarding = True
                    break
            else:
                self._buf += data[start:end]
                if nl < 0:
                    break
                line = bytes(self._buf)
                self._buf.clear()
                self._emit(line, out)
            start = nl + 1
        return out

    def _emit(self, line: bytes, out: list[str | LineError]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            return
        if len(line) > self.max_line:
            out.append(LineError("too_long", f"line of {len(line)} bytes dropped (more than "
                                             f"{self.max_line}; starts {line[:_DETAIL_BYTES]!r})"))
            return
        try:
            text = line.decode("utf-8")
            if text.strip():  # (a line of blanks and separators alone carries nothing)
                out.append(text)
        except UnicodeDecodeError as exc:
            out.append(LineError("not_utf8", f"line is not valid UTF-8 at byte {exc.start}: "
                                             f"{line[:_DETAIL_BYTES]!r}"))
