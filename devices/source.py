"""The one seam every source of readings implements, and what it talks to.

A source (serial port, MQTT subscription, HL7 listener, simulator) turns bytes into
:class:`~monitor.readings.Reading` objects and hands them to a :class:`Sink` (the core's
``Monitor``). It knows nothing of alarms or the UI. Its parsing is pure functions in the
``devices.parsers`` modules; the source only does I/O, counting and reconnecting.

Error tree of the device layer::

    DeviceError                 base of everything raised here
    +-- ParseError(reason)      a frame that cannot be taken; ``reason`` is the counter key
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from monitor.clock import Clock
from monitor.core import IngestResult
from monitor.errors import ChairsideError
from monitor.readings import Reading
from monitor.rejections import RejectionCounter

__all__ = [
    "DeviceError",
    "Frame",
    "ParseError",
    "Sink",
    "Source",
    "SourceBase",
    "SourceState",
    "frame_readings",
]


class DeviceError(ChairsideError):
    """Base of the device layer's errors."""


class ParseError(DeviceError, ValueError):
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


def frame_readings(frame: Frame, *, chair: str, device: str, receive_time: float,
                   use_device_time: bool = True) -> list[Reading]:
    """One Reading per parameter of a frame. The frame's own time is used when it has one
    and ``use_device_time`` is set, else the receive time."""
    t = frame.time if use_device_time and frame.time is not None else receive_time
    dev = frame.device or device
    return [Reading(chair, key, value, t, receive_time, dev, frame.seq, frame.flags)
            for key, value in frame.values.items()]


class Sink(Protocol):
    """What a source hands its readings to (the core's Monitor implements it)."""

    clock: Clock

    def ingest(self, readings: Iterable[Reading]) -> IngestResult: ...

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


class SourceBase:
    """State, counters and the last error, shared by every source."""

    kind = "source"

    def __init__(self, name: str, sink: Sink) -> None:
        self.name = name
        self.sink = sink
        self.log = logging.getLogger(f"chairside.devices.{self.kind}.{name}")
        self._state = SourceState.STOPPED
        self._state_lock = threading.Lock()
        self.rejected = RejectionCounter(self.log, what="frame")
        self.frames_accepted = 0
        self.readings_accepted = 0
        self.reconnects = 0
        self.last_error: str | None = None

    @property
    def state(self) -> SourceState:
        return self._state

    def _set_state(self, state: SourceState, error: str | None = None) -> None:
        with self._state_lock:
            old, self._state = self._state, state
            if error:
                self.last_error = error
        if old is not state:
            log = self.log.warning if state in (SourceState.DISCONNECTED, SourceState.FAILED) \
                else self.log.info
            log("%s -> %s%s", old.value, state.value, f": {error}" if error else "")

    def reject(self, reason: str, detail: str) -> None:
        self.rejected(reason, detail)

    def deliver(self, readings: list[Reading]) -> IngestResult:
        """Hand a frame's readings to the core and count the outcome. Readings the core
        refuses are counted here too, under ``core:<reason>``."""
        result = self.sink.ingest(readings)
        self.frames_accepted += 1
        self.readings_accepted += result.accepted
        for index, reason in result.rejected:
            self.rejected(f"core:{reason.value}", repr(readings[index]))
        return result

    def health(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "state": self._state.value,
            "frames_accepted": self.frames_accepted, "readings_accepted": self.readings_accepted,
            "rejected": dict(self.rejected.counts), "reconnects": self.reconnects,
            "last_error": self.last_error,
        }
