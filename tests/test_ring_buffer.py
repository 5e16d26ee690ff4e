"""Tests for monitor.ring_buffer: unit tests plus property tests against a list model."""

from __future__ import annotations

import bisect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from monitor.ring_buffer import RingBuffer, Window, downsample

Row = tuple[float, float | None, int]


def rows(window: Window) -> list[Row]:
    """A window as a list of (time, value or None, flags)."""
    return [
        (float(t), None if math.isnan(v) else float(v), int(f))
        for t, v, f in zip(window.times, window.values, window.flags, strict=True)
    ]


def filled(capacity: int, times: list[float]) -> RingBuffer:
    buf = RingBuffer(capacity)
    for t in times:
        assert buf.append(t, t * 10)
    return buf


# -- unit tests ---------------------------------------------------------------------------


def test_empty_buffer() -> None:
    buf = RingBuffer(4)
    assert len(buf) == 0
    assert buf.capacity == 4
    assert buf.latest() is None
    assert buf.latest_valid() is None
    assert buf.oldest_time is None
    assert buf.latest_time is None
    snap = buf.snapshot()
    assert [a.size for a in snap] == [0, 0, 0]
    assert (snap.times.dtype, snap.values.dtype, snap.flags.dtype) == (
        np.float64,
        np.float32,
        np.uint16,
    )
    assert rows(buf.since(0.0)) == rows(buf.between(0, 1)) == rows(buf.last(5, 10)) == []


@pytest.mark.parametrize("capacity", [0, -3])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError):
        RingBuffer(capacity)


def test_append_in_order() -> None:
    buf = filled(5, [1.0, 2.0, 3.0])
    assert len(buf) == 3
    assert rows(buf.snapshot()) == [(1.0, 10.0, 0), (2.0, 20.0, 0), (3.0, 30.0, 0)]
    assert buf.latest() == (3.0, 30.0, 0)
    assert (buf.oldest_time, buf.latest_time) == (1.0, 3.0)


def test_wrap_around_drops_oldest() -> None:
    buf = filled(3, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert len(buf) == 3
    assert buf.snapshot().times.tolist() == [3.0, 4.0, 5.0]
    assert buf._start != 0  # physically wrapped
    assert (buf.oldest_time, buf.latest_time) == (3.0, 5.0)


def test_late_insert_in_middle() -> None:
    buf = filled(10, [1.0, 2.0, 4.0, 5.0])
    assert buf.append(3.0, 30.0, 7)
    assert rows(buf.snapshot())[2] == (3.0, 30.0, 7)
    assert buf.snapshot().times.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert buf.latest() == (5.0, 50.0, 0)


def test_late_insert_before_oldest_when_not_full() -> None:
    buf = filled(10, [5.0, 6.0])
    assert buf.append(1.0, 10.0)
    assert buf.snapshot().times.tolist() == [1.0, 5.0, 6.0]


def test_late_insert_across_wrap_point() -> None:
    buf = filled(5, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # physical [5, 6, 2, 3, 4]
    assert buf._start == 2
    assert buf.append(2.5, 25.0, 1)  # moves 3, 4, 5, 6 across the wrap; drops 2
    assert rows(buf.snapshot()) == [
        (2.5, 25.0, 1),
        (3.0, 30.0, 0),
        (4.0, 40.0, 0),
        (5.0, 50.0, 0),
        (6.0, 60.0, 0),
    ]
    assert buf.append(5.5, 55.0)
    assert buf.snapshot().times.tolist() == [3.0, 4.0, 5.0, 5.5, 6.0]


def test_full_buffer_refuses_sample_older_than_oldest() -> None:
    buf = filled(3, [1.0, 2.0, 3.0, 4.0])
    before = rows(buf.snapshot())
    assert buf.append(1.5, 99.0) is False
    assert rows(buf.snapshot()) == before
    # equal to the oldest is accepted: it sorts after it, then the oldest drops
    assert buf.append(2.0, 99.0) is True
    assert rows(buf.snapshot()) == [(2.0, 99.0, 0), (3.0, 30.0, 0), (4.0, 40.0, 0)]


def test_capacity_one() -> None:
    buf = RingBuffer(1)
    assert buf.append(5.0, 1.0)
    assert buf.append(4.0, 2.0) is False
    assert buf.append(5.0, 3.0)
    assert buf.append(6.0, 4.0)
    assert rows(buf.snapshot()) == [(6.0, 4.0, 0)]


def test_equal_times_keep_insertion_order() -> None:
    buf = RingBuffer(10)
    for t, v in [(1.0, 1.0), (2.0, 2.0), (2.0, 3.0), (3.0, 4.0)]:
        buf.append(t, v)
    assert buf.append(2.0, 5.0)  # late: goes after the existing 2.0 samples
    assert buf.append(3.0, 6.0)  # in order: goes after the existing 3.0
    assert buf.snapshot().values.tolist() == [1.0, 2.0, 3.0, 5.0, 4.0, 6.0]


def test_nan_values() -> None:
    buf = RingBuffer(8)
    buf.append(1.0, 97.0)
    buf.append(2.0, None)
    buf.append(3.0, float("nan"), 2)
    assert buf.latest() == (3.0, None, 2)
    assert buf.latest_valid() == (1.0, 97.0)
    assert buf.latest_valid(not_before=1.0) == (1.0, 97.0)
    assert buf.latest_valid(not_before=1.5) is None
    assert np.isnan(buf.snapshot().values[1:]).all()


def test_latest_valid_scans_many_chunks_and_wraps() -> None:
    buf = RingBuffer(1000)
    buf.extend(np.arange(1500.0), np.full(1500, np.nan))
    buf.append(1500.0, 42.0)
    buf.extend(np.arange(1501.0, 2400.0), np.full(899, np.nan))
    assert buf.latest_valid() == (1500.0, 42.0)
    assert buf.latest_valid(not_before=1500.0) == (1500.0, 42.0)
    assert buf.latest_valid(not_before=1500.5) is None


def test_flags_round_trip() -> None:
    buf = RingBuffer(4)
    buf.append(1.0, 1.0, 0xFFFF)
    buf.append(2.0, 2.0, 1 << 8)
    buf.extend([3.0, 4.0], [3.0, 4.0], np.array([5, 0x8001]))
    assert buf.snapshot().flags.tolist() == [0xFFFF, 1 << 8, 5, 0x8001]
    assert buf.latest() == (4.0, 4.0, 0x8001)
    with pytest.raises(ValueError):
        buf.append(5.0, 1.0, 0x10000)
    with pytest.raises(ValueError):
        buf.append(5.0, 1.0, -1)
    with pytest.raises(ValueError):
        buf.extend([5.0], [1.0], [0x10000])
    assert len(buf) == 4


def test_append_rejects_non_finite_time() -> None:
    buf = RingBuffer(4)
    for t in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            buf.append(t, 1.0)
    assert len(buf) == 0


def test_extend_more_than_capacity_keeps_newest() -> None:
    buf = filled(5, [0.0, 1.0])
    times = np.arange(10.0, 22.0)
    buf.extend(times, times * 2, np.arange(12))
    assert len(buf) == 5
    assert rows(buf.snapshot()) == [(t, t * 2, int(t) - 10) for t in times[-5:]]


def test_extend_wraps_onto_existing() -> None:
    buf = filled(5, [0.0, 1.0, 2.0])
    buf.extend([3.0, 3.0, 4.0, 5.0], [np.nan, 1.0, 2.0, 3.0])
    assert rows(buf.snapshot()) == [
        (2.0, 20.0, 0),
        (3.0, None, 0),
        (3.0, 1.0, 0),
        (4.0, 2.0, 0),
        (5.0, 3.0, 0),
    ]
    buf.extend([], [])
    assert len(buf) == 5


@pytest.mark.parametrize(
    ("times", "values"),
    [
        ([3.0, 2.0], [1.0, 1.0]),  # unsorted
        ([0.5, 6.0], [1.0, 1.0]),  # older than latest
        ([6.0, 7.0], [1.0]),  # length mismatch
        ([6.0, float("nan")], [1.0, 1.0]),  # non-finite time
    ],
)
def test_extend_rejects_bad_input(times: list[float], values: list[float]) -> None:
    buf = filled(5, [1.0, 5.0])
    with pytest.raises(ValueError):
        buf.extend(times, values)
    assert buf.snapshot().times.tolist() == [1.0, 5.0]


def test_memory_flat_and_arrays_never_reallocated() -> None:
    buf = RingBuffer(64)
    arrays = (buf._times, buf._values, buf._flags)
    addresses = [a.ctypes.data for a in arrays]
    nbytes = buf.nbytes
    assert nbytes == 64 * (8 + 4 + 2)
    rng = np.random.default_rng(7)
    for i in range(5000):
        late = rng.random() < 0.2
        buf.append(i - (rng.integers(1, 50) if late else 0), float(i), i % 7)
    buf.extend(np.arange(6000.0, 6200.0), np.zeros(200))
    assert buf.nbytes == nbytes
    assert all(a is b for a, b in zip(arrays, (buf._times, buf._values, buf._flags), strict=True))
    assert [a.ctypes.data for a in arrays] == addresses


def test_window_queries_on_wrapped_buffer() -> None:
    buf = filled(6, [float(t) for t in range(10)])  # keeps 4..9, wrapped
    assert buf.since(6.5).times.tolist() == [7.0, 8.0, 9.0]
    assert buf.since(0.0).times.tolist() == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert buf.since(9.5).times.size == 0
    assert buf.between(5.0, 8.0).times.tolist() == [5.0, 6.0, 7.0, 8.0]
    assert buf.between(8.0, 5.0).times.size == 0
    assert buf.last(2.0, now=8.0).times.tolist() == [6.0, 7.0, 8.0]
    assert buf.snapshot().times.tolist() == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]


def test_windows_are_copies() -> None:
    buf = filled(4, [1.0, 2.0, 3.0, 4.0, 5.0])
    for window in (buf.snapshot(), buf.since(0), buf.between(2, 4), buf.last(10, 5)):
        window.times[:] = -1
        window.values[:] = -1
        window.flags[:] = 9
    assert rows(buf.snapshot()) == [(t, t * 10, 0) for t in (2.0, 3.0, 4.0, 5.0)]


def window_of(values: list[float]) -> Window:
    n = len(values)
    return Window(
        np.arange(n, dtype=np.float64),
        np.array(values, dtype=np.float32),
        np.arange(n, dtype=np.uint16),
    )


def test_downsample_small_window_unchanged() -> None:
    window = window_of([1.0, 2.0, 3.0])
    assert downsample(window, 3) is window
    with pytest.raises(ValueError):
        downsample(window, 1)


def test_downsample_keeps_extremes_and_nan_gaps() -> None:
    values = [float(v) for v in np.sin(np.arange(100) / 5.0)]
    values[40:60] = [float("nan")] * 20
    values[10] = 7.0
    values[80] = -7.0
    out = downsample(window_of(values), 20)
    assert len(out.times) <= 20
    assert (np.diff(out.times) > 0).all()
    assert {7.0, -7.0} <= set(out.values.tolist())
    assert np.isnan(out.values).any()  # the all-NaN buckets stay visible
    idx = out.flags.astype(int)
    np.testing.assert_array_equal(out.values, np.array(values, dtype=np.float32)[idx])


def test_downsample_all_nan_and_odd_max_points() -> None:
    out = downsample(window_of([float("nan")] * 50), 7)  # 3 buckets
    assert len(out.times) == 3
    assert np.isnan(out.values).all()


# -- property tests -----------------------------------------------------------------------

GRID = [k / 2 for k in range(61)]  # 0.0 .. 30.0: small set so equal times are common
times_st = st.sampled_from(GRID)
# integers are exact in float32, so model values compare equal
values_st = st.one_of(st.none(), st.just(float("nan")), st.integers(-50, 250).map(float))
flags_st = st.integers(0, 0xFFFF)


class RingBufferMachine(RuleBasedStateMachine):
    """RingBuffer against a sorted Python list that keeps the newest ``capacity`` rows."""

    @initialize(capacity=st.integers(1, 20))
    def setup(self, capacity: int) -> None:
        self.buf = RingBuffer(capacity)
        self.model: list[Row] = []
        self.capacity = capacity

    def model_append(self, t: float, value: float | None, flags: int) -> bool:
        if len(self.model) == self.capacity and t < self.model[0][0]:
            return False
        value = None if value is None or math.isnan(value) else value
        pos = bisect.bisect_right(self.model, t, key=lambda row: row[0])
        self.model.insert(pos, (t, value, flags))
        del self.model[: -self.capacity]
        return True

    def latest_t(self) -> float:
        return self.model[-1][0] if self.model else 0.0

    @rule(step=st.sampled_from([0.0, 0.5, 0.5, 1.0, 2.0]), value=values_st, flags=flags_st)
    def append_in_order(self, step: float, value: float | None, flags: int) -> None:
        t = self.latest_t() + step
        assert self.buf.append(t, value, flags) == self.model_append(t, value, flags)

    @rule(back=st.sampled_from([0.0, 0.5, 1.0, 1.5, 3.0, 6.0, 12.0]), value=values_st)
    def append_late(self, back: float, value: float | None) -> None:
        t = self.latest_t() - back
        assert self.buf.append(t, value, 3) == self.model_append(t, value, 3)

    @rule(t=times_st, value=values_st, flags=flags_st)
    def append_anywhere(self, t: float, value: float | None, flags: int) -> None:
        assert self.buf.append(t, value, flags) == self.model_append(t, value, flags)

    @rule(batch=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0]), values_st), max_size=30))
    def extend(self, batch: list[tuple[float, float | None]]) -> None:
        times = self.latest_t() + np.cumsum([step for step, _ in batch])
        values = [math.nan if v is None else v for _, v in batch]
        flags = np.arange(len(batch)) * 11
        self.buf.extend(times, values, flags)
        for t, v, f in zip(times.tolist(), values, flags.tolist(), strict=True):
            assert self.model_append(t, v, f)

    @rule(t0=times_st, t1=times_st, seconds=st.sampled_from([0.0, 0.5, 2.0, 10.0]))
    def queries(self, t0: float, t1: float, seconds: float) -> None:
        assert rows(self.buf.since(t0)) == [r for r in self.model if r[0] >= t0]
        assert rows(self.buf.between(t0, t1)) == [r for r in self.model if t0 <= r[0] <= t1]
        expect = [r for r in self.model if t1 - seconds <= r[0] <= t1]
        assert rows(self.buf.last(seconds, t1)) == expect
        valid = [r for r in self.model if r[1] is not None and r[0] >= t0]
        assert self.buf.latest_valid(not_before=t0) == (valid[-1][:2] if valid else None)

    @invariant()
    def matches_model(self) -> None:
        assert rows(self.buf.snapshot()) == self.model
        assert len(self.buf) == len(self.model)
        assert self.buf.latest() == (self.model[-1] if self.model else None)
        assert self.buf.oldest_time == (self.model[0][0] if self.model else None)
        assert self.buf.latest_time == (self.model[-1][0] if self.model else None)
        valid = [r[:2] for r in self.model if r[1] is not None]
        assert self.buf.latest_valid() == (valid[-1] if valid else None)
        assert self.buf.nbytes == self.capacity * 14


TestRingBufferMachine = RingBufferMachine.TestCase
TestRingBufferMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.5, 1.0, 3.0]),
            st.one_of(st.just(float("nan")), st.floats(-1e6, 1e6, width=32)),
        ),
        max_size=200,
    ),
    max_points=st.integers(2, 40),
)
def test_downsample_properties(samples: list[tuple[float, float]], max_points: int) -> None:
    n = len(samples)
    window = Window(
        np.cumsum([step for step, _ in samples], dtype=np.float64),
        np.array([v for _, v in samples], dtype=np.float32),
        np.arange(n, dtype=np.uint16),  # flags = input index, to identify output samples
    )
    out = downsample(window, max_points)
    assert len(out.times) <= max_points
    if n <= max_points:
        assert out is window
    idx = out.flags.astype(np.int64)
    assert (np.diff(idx) > 0).all()  # distinct input samples, in input order
    np.testing.assert_array_equal(out.times, window.times[idx])
    np.testing.assert_array_equal(out.values, window.values[idx])
    assert (np.diff(out.times) >= 0).all()
    real = window.values[~np.isnan(window.values)]
    if real.size:
        assert real.min() in out.values
        assert real.max() in out.values
    if n > max_points:
        assert len(out.times) >= max_points // 2  # at least one sample per bucket
