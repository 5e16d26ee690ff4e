"""What every source of readings builds on: :class:`SourceBase` (state, counters, the last
error, handing readings to the core) and :func:`frame_readings`.

A source (serial port, MQTT subscription, HL7 listener) turns bytes into
:class:`~monitor.readings.Reading` objects and hands them to a :class:`~monitor.seam.Sink`
(the core's ``Monitor``). It knows nothing of alarms or the UI. Its parsing is pure functions
of the wire formats (:mod:`wire`); the source only does I/O, counting and reconnecting. The
seam types themselves (``Sink``, ``Source``, ``SourceState``, ``Frame``, ``ParseError``,
``IngestResult``) are :mod:`monitor.seam`'s.

Error tree of the device layer::

    DeviceError                 base of everything raised here
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from monitor.errors import ChairsideError
from monitor.readings import Reading
from monitor.rejections import RejectionCounter
from monitor.seam import Frame, IngestResult, Sink, SourceState

__all__ = ["DeviceError", "SourceBase", "frame_readings"]


class DeviceError(ChairsideError):
    """Base of the device layer's errors."""


def frame_readings(frame: Frame, *, chair: str, device: str, receive_time: float,
                   use_device_time: bool = True) -> list[Reading]:
    """One Reading per parameter of a frame. The frame's own time is used when it has one
    and ``use_device_time`` is set, else the receive time."""
    t = frame.time if use_device_time and frame.time is not None else receive_time
    dev = frame.device or device
    return [Reading(chair, key, value, t, receive_time, dev, frame.seq, frame.flags)
            for key, value in frame.values.items()]


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

    def deliver(self, readings: list[Reading], receipt: tuple[str, str] | None = None) -> IngestResult:
        """Hand a frame's readings to the core and count the outcome. Readings the core
        refuses are counted here too, under ``core:<reason>``. ``receipt``: see
        :meth:`monitor.seam.Sink.ingest`."""
        if receipt is None:
            result = self.sink.ingest(readings)
        else:
            result = self.sink.ingest(readings, receipt=receipt)
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
