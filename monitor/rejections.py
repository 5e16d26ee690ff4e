"""Counting and logging refused input without flooding the log.

Every refusal is counted by reason and kept in a short list of recent ones (for the health
page); the log gets one WARNING line per reason at most once per ``interval`` seconds,
saying how many were refused since the last line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

__all__ = ["Rejection", "RejectionCounter"]


@dataclass(frozen=True, slots=True)
class Rejection:
    time: float
    reason: str
    detail: str


class RejectionCounter:
    def __init__(self, logger: logging.Logger, what: str = "reading", interval: float = 1.0,
                 keep: int = 50) -> None:
        self._log = logger
        self._what = what
        self._interval = interval
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.recent: deque[Rejection] = deque(maxlen=keep)
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def __call__(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.counts[reason] += 1
            self.recent.append(Rejection(time.time(), reason, detail))
            last = self._logged_at.get(reason)
            if last is not None and now - last < self._interval:
                self._unlogged[reason] += 1
                return
            more = self._unlogged.pop(reason, 0)
            self._logged_at[reason] = now
        suffix = f" (and {more} more since the last report)" if more else ""
        self._log.warning("%s rejected: %s: %s%s", self._what, reason, detail, suffix)

    def total(self) -> int:
        return sum(self.counts.values())
