"""What a dialect module declares about itself (its ``DIALECT``), for :mod:`wire.registry`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from monitor.seam import Frame

__all__ = ["Dialect"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """One wire format.

    - ``name``: the protocol name (a serial source's ``protocol``, ``chairside decode
      --protocol``); ``aliases`` are other names ``decode`` takes.
    - ``transport``: ``serial`` (``parse`` takes one line, terminator removed, and returns a
      Frame, or None for a line without a reading such as a header), ``mqtt`` (``parse`` takes
      one payload's bytes) or ``hl7`` (``parse`` takes one message's text or bytes and returns
      a :class:`~wire.hl7.pcd01.Pcd01Message`).
    - ``format``: the inverse of ``parse`` for a Frame: a line (no terminator), a payload, a
      message. Values are written at the dialect's precision; flags the dialect has no code
      for are left out; ValueError for what it cannot write at all.
    - ``parameters``: the parameter keys it can carry (None: every one).
    - ``samples``: a few frames as the device sends them (synthetic, written from the
      dialect's documentation; what ``parse`` takes: text, or bytes for MQTT); each parses
      to a reading.
    - ``header``: lines a device repeats between readings (e.g. Nellcor's header and column
      lines), which carry none.
    """

    name: str
    transport: Literal["serial", "mqtt", "hl7"]
    title: str
    parse: Callable[[Any], Any]
    format: Callable[[Frame], Any]
    parameters: frozenset[str] | None
    samples: tuple[str | bytes, ...]
    header: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
