"""A fixed-size, time-ordered ring buffer for one chair's samples of one vital sign.

Three numpy arrays are allocated once at full capacity and never reallocated: ``times``
(``float64`` UNIX seconds), ``values`` (``float32``, NaN meaning "no value") and ``flags``
(``uint16`` quality bitmask). Memory is therefore flat once the buffer is full; the oldest
sample is dropped to make room for a new one.

Samples are kept sorted by time. Appending in time order is O(1). A late sample is put at its
sorted position by moving only the samples newer than it (one vectorised copy, O(k) for k
newer samples). Window queries use ``np.searchsorted`` over the logically ordered data, which
is at most two contiguous physical segments, and return copies.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["RingBuffer", "Window", "downsample"]

_MAX_FLAGS = 0xFFFF
_SCAN_CHUNK = 256  # samples examined per vectorised step of latest_valid()


class Window(NamedTuple):
    """Copies of a run of samples, ascending in time. ``len(window)`` is 3 (a tuple):
    use ``len(window.times)`` for the number of samples."""

    times: np.ndarray
    values: np.ndarray
    flags: np.ndarray

_NAN = float("nan")


class RingBuffer:
    """Time-ordered samples of one parameter, at most ``capacity`` of them."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = int(capacity)
        self._times = np.zeros(self._capacity, dtype=np.float64)
        self._values = np.full(self._capacity, np.nan, dtype=np.float32)
        self._flags = np.zeros(self._capacity, dtype=np.uint16)
        self._start = 0  # physical index of the oldest sample
        self._len = 0
        self._last = -math.inf  # time of the newest sample (a float: no numpy read per append)

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return self._len

    @property
    def nbytes(self) -> int:
        return self._times.nbytes + self._values.nbytes + self._flags.nbytes

    @property
    def oldest_time(self) -> float | None:
        return float(self._times[self._start]) if self._len else None

    @property
    def latest_time(self) -> float | None:
        return float(self._times[self._phys(self._len - 1)]) if self._len else None

    def __repr__(self) -> str:
        return f"RingBuffer(capacity={self._capacity}, len={self._len})"

    # -- writing -------------------------------------------------------------------------

    def append(self, t: float, value: float | None, flags: int = 0) -> bool:
        """Store one sample; False if the buffer is full and ``t`` is older than all of it."""
        if not math.isfinite(t):
            raise ValueError(f"sample time must be finite, got {t!r}")
        if not 0 <= flags <= _MAX_FLAGS:
            raise ValueError(f"flags must fit in 16 bits, got {flags!r}")
        n, cap = self._len, self._capacity
        if n and t < self._last:
            return self._insert_late(t, value, flags)
        i = self._start + n  # the hot path: plain index arithmetic, three scalar stores
        if i >= cap:
            i -= cap
        self._times[i] = t
        self._values[i] = _NAN if value is None else value
        self._flags[i] = flags
        self._last = t
        if n == cap:
            self._start = i + 1 if i + 1 < cap else 0
        else:
            self._len = n + 1
        return True

    def _insert_late(self, t: float, value: float | None, flags: int) -> bool:
        n = self._len
        if n == self._capacity and t < self._times[self._start]:
            return False
        pos = self._search(t, "right")
        moved = [self._copy(arr, pos, n) for arr in self._arrays()]
        self._write(pos + 1, *moved)  # when full, this overwrites the oldest slot
        i = self._phys(pos)
        self._times[i] = t
        self._values[i] = _NAN if value is None else value
        self._flags[i] = flags
        self._advance(1)
        return True

    def extend(self, times: ArrayLike, values: ArrayLike, flags: ArrayLike | None = None) -> None:
        """Bulk-append time-sorted samples, all no older than the current latest one."""
        t = np.asarray(times, dtype=np.float64)
        v = np.asarray(values, dtype=np.float32)
        f = np.zeros(t.shape, dtype=np.int64) if flags is None else np.asarray(flags)
        if t.ndim != 1 or v.shape != t.shape or f.shape != t.shape:
            raise ValueError("times, values and flags must be 1-D arrays of equal length")
        if not t.size:
            return
        if not np.isfinite(t).all() or (np.diff(t) < 0).any():
            raise ValueError("times must be finite and sorted ascending")
        if self._len and t[0] < self._times[self._phys(self._len - 1)]:
            raise ValueError("extend() times must not be older than the latest sample")
        if f.min() < 0 or f.max() > _MAX_FLAGS:
            raise ValueError("flags must fit in 16 bits")
        keep = min(t.size, self._capacity)
        self._write(self._len, t[-keep:], v[-keep:], f[-keep:].astype(np.uint16))
        self._advance(keep)
        self._last = float(t[-1])

    # -- reading -------------------------------------------------------------------------

    def latest(self) -> tuple[float, float | None, int] | None:
        """(time, value or None, flags) of the newest sample, or None when empty."""
        if not self._len:
            return None
        i = self._phys(self._len - 1)
        value = float(self._values[i])
        return float(self._times[i]), None if math.isnan(value) else value, int(self._flags[i])

    def latest_valid(self, not_before: float | None = None) -> tuple[float, float] | None:
        """(time, value) of the newest sample with a value, not older than ``not_before``."""
        lo = 0 if not_before is None else self._search(not_before, "left")
        end = self._len
        while end > lo:
            begin = max(lo, end - _SCAN_CHUNK)
            found = np.flatnonzero(~np.isnan(self._copy(self._values, begin, end)))
            if found.size:
                i = self._phys(begin + int(found[-1]))
                return float(self._times[i]), float(self._values[i])
            end = begin
        return None

    def since(self, t0: float) -> Window:
        """Samples with time >= t0."""
        return self._window(self._search(t0, "left"), self._len)

    def between(self, t0: float, t1: float) -> Window:
        """Samples with t0 <= time <= t1."""
        lo = self._search(t0, "left")
        return self._window(lo, max(lo, self._search(t1, "right")))

    def last(self, seconds: float, now: float) -> Window:
        """Samples with now - seconds <= time <= now."""
        return self.between(now - seconds, now)

    def snapshot(self) -> Window:
        """Every stored sample."""
        return self._window(0, self._len)

    # -- internals: logical index i (0 = oldest) lives at physical (start + i) % capacity --

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._times, self._values, self._flags

    def _phys(self, i: int) -> int:
        return (self._start + i) % self._capacity

    def _advance(self, added: int) -> None:
        dropped = max(0, self._len + added - self._capacity)
        self._start = (self._start + dropped) % self._capacity
        self._len += added - dropped

    def _segments(self, lo: int, hi: int) -> tuple[slice, slice]:
        """Physical slices covering logical [lo, hi); the second is empty unless it wraps."""
        p, k = self._phys(lo), hi - lo
        first = min(k, self._capacity - p)
        return slice(p, p + first), slice(0, k - first)

    def _copy(self, arr: np.ndarray, lo: int, hi: int) -> np.ndarray:
        a, b = self._segments(lo, hi)
        return np.concatenate((arr[a], arr[b]))

    def _write(self, lo: int, *columns: np.ndarray) -> None:
        a, b = self._segments(lo, lo + len(columns[0]))
        split = a.stop - a.start
        for arr, col in zip(self._arrays(), columns, strict=True):
            arr[a] = col[:split]
            arr[b] = col[split:]

    def _search(self, t: float, side: Literal["left", "right"]) -> int:
        """np.searchsorted over the logical (time-ordered) contents."""
        a, b = self._segments(0, self._len)
        i = int(np.searchsorted(self._times[a], t, side=side))
        if i == a.stop - a.start and b.stop:
            i += int(np.searchsorted(self._times[b], t, side=side))
        return i

    def _window(self, lo: int, hi: int) -> Window:
        return Window(*(self._copy(arr, lo, hi) for arr in self._arrays()))


def downsample(window: Window, max_points: int) -> Window:
    """Min/max decimation for plotting: at most ``max_points`` actual samples.

    The window is split into ``max_points // 2`` buckets of (nearly) equal sample count; each
    bucket keeps its minimum- and maximum-valued samples, in time order. A bucket holding only
    NaN keeps one NaN sample so that gaps stay visible. The global min and max survive.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    n = len(window.times)
    if n <= max_points:
        return window
    buckets = max_points // 2
    edges = np.arange(buckets + 1) * n // buckets  # every bucket has >= 2 samples
    width = int(np.diff(edges).max())
    idx = edges[:-1, None] + np.arange(width)[None, :]
    padding = idx >= edges[1:, None]
    vals = window.values[np.minimum(idx, n - 1)]
    missing = padding | np.isnan(vals)
    # Missing cells never win; an all-missing (all-NaN) row yields column 0, a real sample.
    imin = np.argmin(np.where(missing, np.inf, vals), axis=1)
    imax = np.argmax(np.where(missing, -np.inf, vals), axis=1)
    keep = np.unique(np.concatenate((edges[:-1] + imin, edges[:-1] + imax)))
    return Window(window.times[keep], window.values[keep], window.flags[keep])
