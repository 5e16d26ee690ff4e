"""De-duplication and gap detection of the MQTT source's messages (:mod:`devices.mqtt_source`;
the handling that uses it is :mod:`devices.mqtt_messages`). Pure logic, no I/O.

:class:`SeqTracker` keeps, per device, the highest ``seq`` and the device time of its last
1024 distinct seqs (seeded from the store at start). A seq seen before with the same time is
a redelivery: counted as
``duplicate`` and acknowledged, not ingested. A seq above the highest + 1 is a gap (counted,
logged, in ``health()``); seq 0 (or the same seq with another time, or a jump far back)
is a device restart and resets that device's window.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["SeqCheck", "SeqTracker", "SeqVerdict"]


class SeqVerdict(StrEnum):
    NEW = "new"  # the next seq, or one after a gap
    DUPLICATE = "duplicate"  # seen before (same seq, same device time): a redelivery
    LATE = "late"  # below the highest seq, never seen: arrived out of order (fills a gap)
    RESTART = "restart"  # the device started counting again (rebooted)


@dataclass(frozen=True, slots=True)
class SeqCheck:
    verdict: SeqVerdict
    missing: int = 0  # for NEW: how many seqs were skipped before this one


class _Device:
    __slots__ = ("last", "seen")

    def __init__(self, seq: int, t: float) -> None:
        self.last = seq
        self.seen: dict[int, float] = {seq: t}  # seq -> device time, oldest first


class SeqTracker:
    """Per device, the highest seq and the last ``window`` distinct seqs (with their device
    times); at most ``max_devices`` devices, the least recently heard forgotten first.
    Memory is bounded by ``window * max_devices`` entries. Not thread-safe (one network
    thread uses it). :meth:`check` only looks; :meth:`record` remembers a message once it
    has been handed on."""

    def __init__(self, window: int = 1024, max_devices: int = 4096) -> None:
        self.window = window
        self.max_devices = max_devices
        self._devices: OrderedDict[str, _Device] = OrderedDict()
        self.gaps = 0
        self.missing = 0
        self.late = 0
        self.restarts = 0
        self.last_gap: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self._devices)

    def __contains__(self, device: object) -> bool:
        return device in self._devices

    def seed(self, device: str, last: int, last_time: float,
             recent: Iterable[tuple[int, float]] = ()) -> None:
        """Start from what the store holds of a device: its last seq and the (seq, device
        time) pairs of its newest stored messages, oldest first."""
        d = _Device(last, last_time)
        d.seen = dict(recent)
        d.seen.pop(last, None)
        d.seen[last] = last_time
        while len(d.seen) > self.window:
            del d.seen[next(iter(d.seen))]
        self._devices[device] = d
        while len(self._devices) > self.max_devices:
            self._devices.popitem(last=False)

    def check(self, device: str, seq: int, t: float) -> SeqCheck:
        d = self._devices.get(device)
        if d is None:
            return SeqCheck(SeqVerdict.NEW)
        seen = d.seen.get(seq)
        if seen is not None:
            return SeqCheck(SeqVerdict.DUPLICATE if seen == t else SeqVerdict.RESTART)
        if seq > d.last:
            return SeqCheck(SeqVerdict.NEW, seq - d.last - 1)
        if seq == 0 or seq < d.last - self.window:
            return SeqCheck(SeqVerdict.RESTART)
        return SeqCheck(SeqVerdict.LATE)

    def record(self, device: str, seq: int, t: float, check: SeqCheck) -> None:
        d = self._devices.get(device)
        if d is None or check.verdict is SeqVerdict.RESTART:
            self._devices[device] = _Device(seq, t)
            self._devices.move_to_end(device)
            self.restarts += check.verdict is SeqVerdict.RESTART
            while len(self._devices) > self.max_devices:
                self._devices.popitem(last=False)
            return
        self._devices.move_to_end(device)
        if check.verdict is SeqVerdict.NEW:
            if check.missing:
                self.gaps += 1
                self.missing += check.missing
                self.last_gap = {"device": device, "after": d.last, "seq": seq,
                                 "missing": check.missing, "at": time.time()}
            d.last = seq
        elif check.verdict is SeqVerdict.LATE:
            self.late += 1
        d.seen[seq] = t
        while len(d.seen) > self.window:
            del d.seen[next(iter(d.seen))]
