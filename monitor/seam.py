"""The seam types: what the layers hand each other, in one dependency-free module.

A parser (:mod:`wire`) returns a :class:`Frame` or raises :class:`ParseError`; a source
(:mod:`devices`, a simulator) is a :class:`Source` and hands :class:`~monitor.readings.Reading`
objects to a :class:`Sink` (the core's ``Monitor``), which answers with an
:class:`IngestResult`. This module imports only the standard library and
:mod:`monitor.readings` and :mod:`monitor.errors` (themselves dependency-free), so every
layer may import it without loading the core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from monitor.clock import Clock
from monitor.errors import ChairsideError
from monitor.readings import Reading, RejectReason

__all__ = ["Frame", "IngestResult", "ParseError", "Sink", "Source", "SourceState"]


class ParseError(ChairsideError, ValueError):
    """A frame (line, message, payload) that cannot be taken.

    ``reason`` is a short stable key for the counters (``checksum``, ``malformed``,
    ``bad_value``, ``too_long``, ``not_utf8``, ``bad_json``, ...); the message says more.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    """What a parser makes of one frame: values by parameter key (None: no value), quality
    flags, and whatever identity and time the frame itself carries."""

    values: dict[str, float | None]
    flags: int = 0
    device: str | None = None
    seq: int | None = None
    time: float | None = None  # device time, UNIX seconds (only when the frame has a zone)
    extra: dict[str, Any] = field(default_factory=dict)  # dialect fields kept for display


@dataclass(frozen=True, slots=True)
class IngestResult:
    """The core's answer to one batch of readings."""

    accepted: int
    rejected: tuple[tuple[int, RejectReason], ...]  # (index in the batch, reason)
    ticket: int | None  # store ticket: all accepted readings are durable once it commits


class Sink(Protocol):
    """What a source hands its readings to (the core's Monitor implements it)."""

    clock: Clock

    def ingest(self, readings: Iterable[Reading], receipt: tuple[str, str] | None = None) -> IngestResult:
        """``receipt`` (source, key): the message the readings came in, stored with them
        so that it is recognised when sent again (``message_receipts``)."""
        ...

    def report_connection(self, chair: str, source: str, online: bool, detail: str = "") -> None: ...

    def report_gap(self, chair: str, device: str, missing: int, after_seq: int, seq: int) -> None:
        """``missing`` messages of ``device`` (after ``after_seq``, before ``seq``) never
        arrived: a technical alarm on ``chair`` naming how many."""
        ...

    def report_source(self, source: str, ok: bool, detail: str,
                      chairs: Sequence[str] | None = None, kind: str = "") -> None:
        """A source's own link (to its broker, its port) failed or recovered: a technical
        alarm on each of ``chairs`` (None: every chair of the bay) until it is back.
        ``kind`` (mqtt, serial, hl7) names the transport in the alarm's message."""
        ...

    def on_durable(self, ticket: int | None, callback: Callable[[], None]) -> None: ...

    def device_seqs(self) -> Mapping[str, tuple[int, float, Sequence[tuple[int, float]]]]:
        """Per device: the last seq stored, its device time, and the (seq, device time) of
        its newest stored messages (a source's de-duplication memory after a restart)."""
        ...

    def message_receipts(self, source: str) -> list[str]:
        """The keys of the messages ``source`` took lately (``ingest(..., receipt=)``),
        oldest first: its memory of them after a restart or a takeover."""
        ...


class SourceState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    CONNECTED = "connected"  # receiving (or listening, for a server)
    DISCONNECTED = "disconnected"  # lost its device or broker; retrying
    FAILED = "failed"  # gave up (bad configuration); needs an operator


class Source(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def state(self) -> SourceState: ...

    def health(self) -> dict[str, Any]: ...
