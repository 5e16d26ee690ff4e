"""The chair page's trend figure, read from the core and kept live (the page's I/O; the
figure itself is built by the pure ``dashboard.trend_figure``).

The figure is built once with the page (``dashboard/pages/chair.py``'s layout: no round trip,
no empty plot) and then patched: every 5 s the page's ``refresh_trends`` sends only the
readings newer than the browser's (``patch_trends``: ``dcc.Graph.extendData``, the last times
kept in the browser's ``chair-trend-state``) and the live x window, which
``assets/chair_trends.js`` applies with ``Plotly.relayout``. The figure is built again (sent
whole, ``build_trends``) only when the nurse picks another range, zooms, after an action on
the page, when something besides the continuous readings changed (``figure_signature``:
session steps, limits, baseline, a new NIBP reading, a new alarm) or once ``COMPACT_AFTER``
points were appended. Readings that arrive late (older than the newest one sent) show after
the next build.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

import numpy as np

from dashboard.figures import alarm_text, display_zone
from dashboard.live import LiveBay
from dashboard.trend_figure import (
    CONTINUOUS,
    ChairTrends,
    date_strings,
    figure_signature,
    parse_date,
    trend_figure,
    trend_tail,
)
from monitor.parameters import PARAMETERS
from monitor.readings import QualityFlag
from monitor.records import Session
from monitor.ring_buffer import Window, downsample

__all__ = ["COMPACT_AFTER", "POINTS", "RANGES", "build_trends", "gather_trends", "local_offset",
           "parse_view", "patch_trends", "state_view", "trend_window", "valid_state"]

log = logging.getLogger(__name__)

RANGES = (("session", "Session"), ("1800", "30 min"), ("7200", "2 h"), ("43200", "12 h"))
POINTS = 1200  # per continuous trace in a build (min/max decimation: 12 h -> a pair per 72 s)
NIBP_POINTS = 2000
COMPACT_AFTER = 1800  # points appended to a trace before the figure is built again
_ALL = 10**9  # max_points for Monitor.trend: every sample


def trend_window(live: LiveBay, chair: str, session: Session | None, now: float, span: str,
                 view: tuple[float, float] | None) -> tuple[float, float]:
    """The figure's time range: the zoomed ``view``, else the chosen span up to now (the
    session: from 5 min before its start, or the last hour without one), capped to the buffers."""
    if view is not None:
        return view
    if span.isdigit():
        start = now - float(span)
    else:
        start = session.started_at - 300 if session is not None else now - 3600
    start = max(start, now - live.config.buffers.continuous_hours * 3600)
    return start, now + max(60.0, (now - start) * 0.02)


def local_offset(now: float) -> float:
    """Seconds east of UTC of the bay's time at ``now`` (the axis shows the bay's time)."""
    offset = datetime.fromtimestamp(now, display_zone()).utcoffset()
    return offset.total_seconds() if offset else 0.0


def _series(live: LiveBay, chair: str, key: str, now: float, t0: float, t1: float,
            points: int) -> Window:
    w = live.monitor.trend(chair, key, max(0.0, now - t0), _ALL)
    if t1 < now:
        keep = w.times <= t1
        w = Window(w.times[keep], w.values[keep], w.flags[keep])
    d = downsample(w, points)
    if len(d.times) < len(w.times) and d.times[-1] < w.times[-1]:  # always end on the newest
        d = Window(*(np.append(a, b[-1]) for a, b in zip(d, w, strict=True)))
    return d


def gather_trends(live: LiveBay, chair: str, span: str = "session",
                  view: tuple[float, float] | None = None) -> ChairTrends:
    """Everything the figure shows, read from the core and the store (the page's I/O)."""
    monitor = live.monitor
    now = monitor.clock.now()
    status = live.snapshot().chair(chair)
    assert status is not None
    session = status.session
    start, end = trend_window(live, chair, session, now, span, view)
    series = {}
    manual: tuple[float, ...] = ()
    for p in PARAMETERS:
        w = _series(live, chair, p.key, now, start, end, POINTS if p.continuous else NIBP_POINTS)
        series[p.key] = (w.times, w.values)
        if p.key == "nibp_sys":
            manual = tuple(float(t) for t, f in zip(w.times.tolist(), w.flags.tolist(), strict=True)
                           if int(f) & QualityFlag.MANUAL)
    events = tuple(monitor.session_events(session.id)) if session is not None else ()
    alarms = tuple((e.time, e.alarm.priority.label, alarm_text(e.alarm))
                   for e in monitor.alarm_events(chair=chair, since=start) if e.old_state is None)
    view_key = "live" if view is None else f"{view[0]:.0f}-{view[1]:.0f}"
    return ChairTrends(
        chair=chair, title=status.label, t_range=(start, end), series=series,
        rules=monitor.rules(chair), baseline=monitor.baseline(chair), events=events,
        alarms=alarms, utc_offset_s=local_offset(now), manual=manual,
        uirevision=f"{chair}:{span}:{view_key}")


def _signature(live: LiveBay, chair: str, newest_alarm: float | None, span: str,
               view: tuple[float, float] | None, offset: float) -> str:
    status = live.snapshot().chair(chair)
    session = status.session if status is not None else None
    monitor = live.monitor
    return figure_signature(
        session.id if session else None, session.updated_at if session else None, span, view,
        monitor.rules(chair), sorted(monitor.baseline(chair).items()), newest_alarm, offset)


def _newest(w: Window) -> float | None:
    return float(w.times[-1]) if len(w.times) else None


def build_trends(live: LiveBay, chair: str, span: str = "session",
                 view: tuple[float, float] | None = None,
                 newest_alarm: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole figure, and the state its patches start from (``chair-trend-state``)."""
    data = gather_trends(live, chair, span, view)
    start = data.t_range[0]
    last = {k: float(data.series[k][0][-1]) if len(data.series[k][0]) else start for k in CONTINUOUS}
    # the newest NIBP reading shown (else the start): a newer one means a build
    nibp = _newest(live.monitor.trend(chair, "nibp_sys", live.monitor.clock.now() - start, _ALL))
    nibp = start if nibp is None else max(nibp, start)
    sig = _signature(live, chair, newest_alarm, span, view, data.utc_offset_s)
    status = live.snapshot().chair(chair)
    session = status.session if status is not None else None
    if session is not None and max((e.time for e in data.events), default=-math.inf) < session.updated_at:
        sig = "pending"  # the store has not written the newest session event yet: next time again
    state = {"chair": chair, "span": span, "view": list(view) if view else None, "last": last,
             "nibp": nibp, "n": 0, "mode": "full", "live": view is None,
             "x_range": date_strings(data.t_range, data.utc_offset_s), "sig": sig}
    return trend_figure(data), state


def patch_trends(live: LiveBay, chair: str, state: dict[str, Any],
                 newest_alarm: float | None) -> tuple[list[Any] | None, dict[str, Any]] | None:
    """The readings newer than the browser's as ``extendData`` (None when there are none),
    and the state after them; None instead when the figure must be built again."""
    monitor = live.monitor
    now = monitor.clock.now()
    offset = local_offset(now)
    span, view = state["span"], state_view(state)
    if state.get("sig") != _signature(live, chair, newest_alarm, span, view, offset):
        return None
    last = {k: float(state["last"][k]) for k in CONTINUOUS}
    shown = float(state["nibp"])
    nibp = _newest(monitor.trend(chair, "nibp_sys", max(0.0, now - shown) + 1, _ALL))
    if nibp is not None and nibp > shown:
        return None  # a new NIBP reading: its whisker, label and any manual mark come with a build
    series = {}
    for key in CONTINUOUS:
        w = monitor.trend(chair, key, max(0.0, now - last[key]) + 1, _ALL)
        series[key] = (w.times, w.values)
    extend, last, added = trend_tail(series, last, offset)
    if int(state.get("n", 0)) + added > COMPACT_AFTER:
        return None
    session = live.snapshot().chair(chair)
    window = trend_window(live, chair, session.session if session else None, now, span, view)
    return extend, state | {
        "last": last, "n": int(state.get("n", 0)) + added, "mode": "tail",
        "x_range": date_strings(window, offset) if view is None else state.get("x_range")}


def parse_view(value: Any, now: float) -> tuple[float, float] | None:
    """The zoomed range the browser reports (two local dates as on the axis at ``now``), or
    None for the live view; a malformed one is logged and gives the live view."""
    if value is None:
        return None
    offset = local_offset(now)
    try:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError(f"a zoom is two dates, got {str(value)[:60]!r}")
        t0, t1 = sorted(parse_date(v, offset) for v in value)
        if t1 - t0 < 1:
            raise ValueError("a zoom shorter than a second")
    except ValueError as exc:
        log.warning("chair trend: zoom ignored: %s", exc)
        return None
    return t0, t1


def valid_state(state: Any, chair: str) -> bool:
    """The browser's ``chair-trend-state`` is one this page wrote for this chair (else the
    figure is built again)."""
    try:
        view = state.get("view")
        return (state.get("chair") == chair and state.get("span") in dict(RANGES)
                and all(math.isfinite(float(state["last"][k])) for k in CONTINUOUS)
                and math.isfinite(float(state["nibp"]))
                and int(state.get("n", 0)) >= 0 and isinstance(state.get("sig"), str)
                and (view is None or (len(view) == 2 and all(math.isfinite(float(v)) for v in view))))
    except (AttributeError, KeyError, TypeError, ValueError):
        return False


def state_view(state: dict[str, Any]) -> tuple[float, float] | None:
    view = state.get("view")
    return (float(view[0]), float(view[1])) if view else None
