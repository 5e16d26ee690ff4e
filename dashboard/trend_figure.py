"""The chair page's trend figure, built as plain data, and the patches that keep it live.

Pure: each function takes the core's records and arrays and returns plain data; none reads
the core, the store or the clock (``dashboard/pages/chair.py`` gathers and sends).

    trend_figure(data)            -> the figure as a plain dict (what dcc.Graph is sent)
    make_chair_trends_figure(data)-> the same as a go.Figure (for tests and tools)
    trend_tail(series, last, offset) -> (extendData or None, the new last times)
    figure_signature(...)         -> what, besides the readings, the figure shows (a digest)
    date_strings(times, offset) / parse_date(text, offset)

The figure is built as a dict, not through plotly's ``make_subplots``/``add_hline`` (which
validate every property and took 0.2-0.4 s for one figure): the same layout, about a hundred
times cheaper. Trace order is fixed (``TRACES``) so that new readings can be appended to
traces 0-2 with ``dcc.Graph.extendData`` instead of sending the figure again.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from dashboard.figures import COLOURS
from monitor.alarm_rules import LimitRule
from monitor.records import SessionEvent

__all__ = ["CONTINUOUS", "TRACES", "ChairTrends", "date_strings", "figure_signature",
           "make_chair_trends_figure", "parse_date", "trend_figure", "trend_tail"]

#: The figure's first traces, in order: the ones new readings are appended to, and NIBP.
TRACES = ("hr", "pr", "spo2", "nibp")
CONTINUOUS = TRACES[:3]


@dataclass(frozen=True)
class ChairTrends:
    """Everything the chair's trend figure shows, gathered by the page from the core."""

    chair: str
    title: str
    t_range: tuple[float, float]
    series: dict[str, tuple[np.ndarray, np.ndarray]]  # parameter key -> (times, values)
    rules: tuple[LimitRule, ...] = ()
    baseline: dict[str, float] = field(default_factory=dict)
    events: tuple[SessionEvent, ...] = ()
    alarms: tuple[tuple[float, str, str], ...] = ()  # (raised at, priority label, text)
    utc_offset_s: float = 0.0  # local time shown on the axis
    manual: tuple[float, ...] = ()  # times of NIBP readings a nurse entered (QualityFlag.MANUAL)
    uirevision: str | None = None  # plotly keeps the user's zoom while this stays (default: chair)


_EVENT_LABELS = {
    "session_started": "Session start", "infusion_started": "Infusion start",
    "rate_changed": "Rate", "infusion_paused": "Paused", "infusion_resumed": "Resumed",
    "infusion_stopped": "Infusion stop", "bolus": "Bolus", "note": "Note",
    "baseline_set": "Baseline", "limits_changed": "Limits", "observation_started": "Observation",
    "session_ended": "End",
}
_ROWS = {"hr": 1, "pr": 1, "spo2": 2, "nibp_sys": 3, "nibp_dia": 3, "nibp_map": 3}
# rows' y domains as make_subplots(rows=3, vertical_spacing=0.035, row_heights=[.36, .30, .34])
_DOMAINS = {1: [0.6652, 1.0], 2: [0.3512, 0.6302], 3: [0.0, 0.3162]}
_AXIS_TITLES = {1: "HR / PR  /min", 2: "SpO2  %", 3: "NIBP  mmHg"}
_EMPTY = (np.empty(0), np.empty(0))


def date_strings(times: np.ndarray | Sequence[float], offset: float) -> list[str]:
    """UNIX seconds to local ISO date strings (``2027-01-15T09:00:00.000``) for plotly's date
    axis, vectorised."""
    arr = np.round((np.asarray(times, dtype=float) + offset) * 1000).astype("datetime64[ms]")
    return np.datetime_as_string(arr, unit="ms").tolist()


def parse_date(text: Any, offset: float) -> float:
    """A date plotly reports (``2027-01-15 09:00:00.5123``, local, as on the axis) back to
    UNIX seconds. ValueError names what is wrong."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"not a date: {str(text)[:40]!r}")
    if isinstance(text, int | float):  # plotly may report milliseconds
        if not math.isfinite(text):
            raise ValueError(f"not a date: {text!r}")
        return float(text) / 1000 - offset
    try:
        local = datetime.fromisoformat(text.strip()[:32])
    except ValueError:
        raise ValueError(f"not a date: {text[:40]!r}") from None
    return local.replace(tzinfo=UTC).timestamp() - offset


def _values(values: np.ndarray) -> list[float | None]:
    return np.where(np.isfinite(values), values, None).tolist()


@cache
def _template() -> dict[str, Any]:
    """plotly_dark, as plotly.py would expand it, with only the trace defaults used here."""
    t = pio.templates["plotly_dark"].to_plotly_json()
    return {"layout": t["layout"], "data": {"scatter": t["data"].get("scatter", [])}}


def _line_trace(key: str, data: ChairTrends) -> dict[str, Any]:
    name = {"hr": "HR", "pr": "PR", "spo2": "SpO2"}[key]
    times, values = data.series.get(key, _EMPTY)
    return {
        "type": "scatter", "x": date_strings(times, data.utc_offset_s), "y": _values(values),
        "name": name, "mode": "lines", "connectgaps": False, "xaxis": "x" if key != "spo2" else "x2",
        "yaxis": "y" if key != "spo2" else "y2",
        "line": {"color": COLOURS[key], "width": 2 if key != "pr" else 1.2,
                 "dash": "solid" if key != "pr" else "dot"},
        "hovertemplate": f"{name} %{{y:.0f}}<extra>%{{x|%H:%M:%S}}</extra>",
    }


def _nibp(data: ChairTrends) -> tuple[list[float], list[float], list[float], list[float], list[str],
                                      list[float | None]]:
    sys_t, sys_v = data.series.get("nibp_sys", _EMPTY)
    dia = _by_time(data.series.get("nibp_dia"))
    mean = _by_time(data.series.get("nibp_map"))
    xs, ys, up, down, text, maps = [], [], [], [], [], []
    for t, s in zip(sys_t.tolist(), sys_v.tolist(), strict=True):
        if not math.isfinite(s):
            continue
        d = dia.get(t)
        m = mean.get(t)
        centre = m if m is not None else (d + (s - d) / 3 if d is not None else s)
        xs.append(t)
        ys.append(centre)
        up.append(s - centre)
        down.append(centre - d if d is not None else 0)
        maps.append(m)
        text.append(f"{s:.0f}/{d:.0f}" if d is not None else f"{s:.0f}/?")
    return xs, ys, up, down, text, maps


def trend_figure(data: ChairTrends) -> dict[str, Any]:
    """HR and PR, SpO2 (lines) and NIBP (sys/dia whiskers, MAP marker) on a shared time
    axis, with each rule's effective limit, the baseline and the session's events: a plain
    figure dict. Traces 0-3 are ``TRACES``; a trace of manual NIBP readings may follow."""
    off = data.utc_offset_s
    traces = [_line_trace(k, data) for k in CONTINUOUS]
    xs, ys, up, down, text, maps = _nibp(data)
    traces.append({
        "type": "scatter", "x": date_strings(xs, off), "y": ys, "name": "NIBP sys/dia (MAP)",
        "xaxis": "x3", "yaxis": "y3", "mode": "markers+text", "text": text,
        "textposition": "top center", "textfont": {"color": COLOURS["nibp"], "size": 12},
        "marker": {"color": COLOURS["map"], "size": 9, "symbol": "diamond"},
        "error_y": {"type": "data", "symmetric": False, "array": up, "arrayminus": down,
                    "color": COLOURS["nibp"], "thickness": 2.5, "width": 7},
        "customdata": [[u + c, c - dd, mm] for u, dd, c, mm in zip(up, down, ys, maps, strict=True)],
        "hovertemplate": "NIBP %{customdata[0]:.0f}/%{customdata[1]:.0f} MAP %{y:.0f}"
                         "<extra>%{x|%H:%M:%S}</extra>"})
    manual = set(data.manual)
    marks = [(x, y) for x, y in zip(xs, ys, strict=True) if x in manual]
    if marks:  # a nurse's reading, not a device's: ringed and labelled
        traces.append({
            "type": "scatter", "x": date_strings([x for x, _ in marks], off), "y": [y for _, y in marks],
            "name": "NIBP manual", "xaxis": "x3", "yaxis": "y3", "mode": "markers+text",
            "text": ["manual"] * len(marks), "textposition": "bottom center",
            "textfont": {"color": COLOURS["muted"], "size": 11},
            "marker": {"color": "rgba(0,0,0,0)", "size": 18, "symbol": "circle-open",
                       "line": {"color": COLOURS["nibp"], "width": 2}},
            "hovertemplate": "manual NIBP (entered by a nurse)<extra>%{x|%H:%M:%S}</extra>"})

    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []

    def hline(y: float, row: int, line: dict[str, Any], note: dict[str, Any], opacity: float = 1.0) -> None:
        ax = "" if row == 1 else str(row)
        shapes.append({"type": "line", "xref": f"x{ax} domain", "x0": 0, "x1": 1, "yref": f"y{ax}",
                       "y0": y, "y1": y, "line": line, "opacity": opacity})
        notes.append({"xref": f"x{ax} domain", "yref": f"y{ax}", "y": y, "showarrow": False} | note)

    drawn: set[tuple[int, float]] = set()
    for rule in data.rules:
        row = _ROWS.get(rule.parameter)
        limit = rule.limit(data.baseline.get(rule.parameter))
        if row is None or limit is None or (row, limit) in drawn or rule.parameter == "pr":
            continue
        drawn.add((row, limit))
        colour = COLOURS[rule.priority.label]
        label = f"{rule.parameter.replace('nibp_', '').upper()} {'<' if rule.direction == 'low' else '>'}"
        label += f" {limit:g}" + (f" (bl −{rule.baseline_pct:g}%)" if rule.relative else "")
        hline(limit, row, {"color": colour, "width": 1.2, "dash": "dash"},
              {"text": label, "x": 1, "xanchor": "left", "yanchor": "middle",
               "font": {"color": colour, "size": 11}}, opacity=0.85)
    for key, row in (("hr", 1), ("spo2", 2), ("nibp_sys", 3)):
        if key in data.baseline:
            value = data.baseline[key]
            hline(value, row, {"color": COLOURS["baseline"], "width": 1, "dash": "dot"},
                  {"text": f"baseline {value:g}", "x": 0, "xanchor": "left", "yanchor": "bottom",
                   "font": {"color": COLOURS["baseline"], "size": 11}})

    for i, e in enumerate(data.events):
        label = _EVENT_LABELS.get(e.kind.value, e.kind.value)
        if e.detail and e.kind.value in ("rate_changed", "bolus", "note"):
            label += f": {e.detail[:28]}"
        (x,) = date_strings([e.time], off)
        shapes.append({"type": "line", "x0": x, "x1": x, "xref": "x", "yref": "paper", "y0": 0, "y1": 1,
                       "line": {"color": "#c792ea", "width": 1, "dash": "dot"}})
        notes.append({"x": x, "xref": "x", "yref": "paper", "y": 1.005 + 0.04 * (i % 3),
                      "yanchor": "bottom", "text": label, "showarrow": False, "xanchor": "left",
                      "font": {"color": "#d7b4f5", "size": 11}, "bgcolor": "rgba(11,16,22,0.8)"})
    for t, priority, text in data.alarms:
        (x,) = date_strings([t], off)
        notes.append({"x": x, "xref": "x", "yref": "paper", "y": 0, "yanchor": "bottom", "text": "▲",
                      "hovertext": text, "showarrow": False,
                      "font": {"color": COLOURS[priority], "size": 12}})

    x_range = date_strings(data.t_range, off)
    layout: dict[str, Any] = {
        "template": _template(), "paper_bgcolor": COLOURS["paper"], "plot_bgcolor": COLOURS["plot"],
        "font": {"color": COLOURS["text"], "family": "DejaVu Sans, Segoe UI, sans-serif", "size": 13},
        "margin": {"l": 70, "r": 160, "t": 64, "b": 36}, "showlegend": False, "hovermode": "x unified",
        "uirevision": data.uirevision or data.chair, "shapes": shapes, "annotations": notes,
    }
    for row in (1, 2, 3):
        ax = "" if row == 1 else str(row)
        layout[f"xaxis{ax}"] = {
            "anchor": f"y{ax}", "domain": [0.0, 1.0], "range": x_range, "type": "date",
            "gridcolor": COLOURS["grid"], "zeroline": False, "tickformat": "%H:%M", "showline": True,
            "linecolor": COLOURS["grid"],
            **({"matches": "x3", "showticklabels": False} if row != 3 else {})}
        layout[f"yaxis{ax}"] = {
            "anchor": f"x{ax}", "domain": _DOMAINS[row], "gridcolor": COLOURS["grid"], "zeroline": False,
            "range": _axis_range(row, data),
            "title": {"text": _AXIS_TITLES[row], "font": {"size": 13, "color": COLOURS["muted"]}}}
    return {"data": traces, "layout": layout}


def make_chair_trends_figure(data: ChairTrends) -> go.Figure:
    """``trend_figure`` as a plotly Figure (validated; for tests and tools, not the page)."""
    return go.Figure(trend_figure(data))


def _by_time(series: tuple[np.ndarray, np.ndarray] | None) -> dict[float, float]:
    if series is None:
        return {}
    return {t: v for t, v in zip(series[0].tolist(), series[1].tolist(), strict=True) if math.isfinite(v)}


def _axis_range(row: int, data: ChairTrends) -> list[float]:
    """A row's default range, widened when data fall outside it."""
    lo, hi = {1: (30, 180), 2: (75, 101), 3: (30, 230)}[row]
    for k in (k for k, r in _ROWS.items() if r == row):
        _, values = data.series.get(k, _EMPTY)
        finite = values[np.isfinite(values)] if len(values) else values
        if len(finite):
            lo, hi = min(lo, float(finite.min()) - 5), max(hi, float(finite.max()) + 5)
    if row == 2:
        hi = min(hi, 101)
    return [lo, hi]


# --- live patches -----------------------------------------------------------------------


def trend_tail(series: dict[str, tuple[np.ndarray, np.ndarray]], last: dict[str, float],
               offset: float) -> tuple[list[Any] | None, dict[str, float], int]:
    """The readings of ``series`` newer than ``last`` (per continuous parameter, the time of
    the newest point the browser has), as ``dcc.Graph.extendData`` for traces 0-2:
    ``[{"x": [[...], [...], [...]], "y": [...]}, [0, 1, 2]]``; None when nothing is new.
    Returns it, the new ``last`` and the number of points appended to the longest trace."""
    xs: list[list[str]] = []
    ys: list[list[float | None]] = []
    new_last = dict(last)
    most = 0
    for key in CONTINUOUS:
        times, values = series.get(key, _EMPTY)
        since = last.get(key, -math.inf)
        keep = times > since
        xs.append(date_strings(times[keep], offset))
        ys.append(_values(values[keep]))
        if keep.any():
            new_last[key] = float(times[keep].max())
            most = max(most, int(keep.sum()))
    if not most:
        return None, new_last, 0
    return [{"x": xs, "y": ys}, list(range(len(CONTINUOUS)))], new_last, most


def figure_signature(*parts: Any) -> str:
    """A short digest of what the figure shows besides the continuous readings (the session
    and its events, limits, baseline, the last NIBP, alarms): when it changes, the figure is
    built again instead of patched."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()
