"""Pure parsers of the device layer: bytes or text in, :class:`~devices.source.Frame` out.

No I/O here: the sources (serial, MQTT, HL7) do the reading and the counting.

- :mod:`devices.parsers.lines`: :class:`LineSplitter` cuts a serial byte stream into lines.
- :mod:`devices.parsers.serial_lines`: one parser per serial line protocol (Masimo ASCII 1,
  Nonin ASCII, Nellcor trend output, Chairside ``$VT`` line), :data:`PARSERS` by name, and
  :func:`chairside_line` to build a ``$VT`` line.
"""

from devices.parsers.lines import MAX_LINE, LineError, LineSplitter
from devices.parsers.serial_lines import (
    PARSERS,
    chairside_checksum,
    chairside_line,
    parse_chairside,
    parse_masimo,
    parse_nellcor,
    parse_nonin,
)

__all__ = [
    "MAX_LINE",
    "PARSERS",
    "LineError",
    "LineSplitter",
    "chairside_checksum",
    "chairside_line",
    "parse_chairside",
    "parse_masimo",
    "parse_nellcor",
    "parse_nonin",
]
