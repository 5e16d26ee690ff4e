"""The trend figure: HR/PR, SpO2 and NIBP over the session, with the alarm limits in force
as they changed (step lines per priority), the infusion and observation periods shaded and
numbered event markers, drawn by matplotlib (Agg, object-oriented API: safe in a web
server's threads) to a 200 dpi PNG the layout places on the first page.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from monitor.exports.pdf_report.data import ReportData
from monitor.exports.pdf_report.style import FIG_H, FIG_W, GAP_S, MPL_PRIORITY, PLOT_POINTS, K, local_clock
from monitor.exports.report_data import NIBP_KEYS, SessionRecord
from monitor.records import AlarmKind, Priority, SessionEvent
from monitor.ring_buffer import Window, downsample

__all__ = ["Steps", "broken_lines", "infusion_periods", "limit_steps", "trend_png"]


Steps = dict[tuple[str, Priority], tuple[list[float], list[float]]]  # (direction, priority) -> xs, ys


def limit_steps(record: SessionRecord, end: float) -> dict[str, Steps]:
    """parameter -> (direction, priority) -> step series (times, thresholds; NaN: none)."""
    timeline = record.rules_timeline()
    keys: set[tuple[str, str, Priority]] = set()
    for _, rules, _ in timeline:
        keys.update((r.parameter, r.direction, r.priority) for r in rules)
    out: dict[str, Steps] = {}
    for param, direction, priority in sorted(keys, key=lambda k: (k[0], k[1], k[2])):
        xs, ys = [], []
        for t, rules, baseline in timeline:
            # with two rules of one ladder rung (absolute and relative) the tighter one shows
            limits = [r.limit(baseline.get(param)) for r in rules
                      if (r.parameter, r.direction, r.priority) == (param, direction, priority)]
            limits = [v for v in limits if v is not None]
            value = (max(limits) if direction == "low" else min(limits)) if limits else math.nan
            xs.append(t)
            ys.append(value)
        xs.append(end)
        ys.append(ys[-1])
        if not all(math.isnan(y) for y in ys):
            out.setdefault(param, {})[(direction, priority)] = (xs, ys)
    return out


def broken_lines(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN inserted where the series pauses longer than GAP_S, so lines do not bridge gaps."""
    if times.size < 2:
        return times, values
    gaps = np.flatnonzero(np.diff(times) > GAP_S)
    if gaps.size == 0:
        return times, values
    return (np.insert(times, gaps + 1, times[gaps] + GAP_S / 2),
            np.insert(values, gaps + 1, np.nan))


def infusion_periods(events: list[SessionEvent], end: float) -> tuple[list[tuple[float, float]],
                                                               tuple[float, float] | None]:
    """The infusion's running periods, and the observation period (or None)."""
    infusing: list[tuple[float, float]] = []
    since: float | None = None
    observation = None
    for e in events:
        if e.kind in (K.INFUSION_STARTED, K.INFUSION_RESUMED):
            since = e.time
        elif e.kind in (K.INFUSION_PAUSED, K.INFUSION_STOPPED, K.OBSERVATION_STARTED, K.SESSION_ENDED):
            if since is not None:
                infusing.append((since, e.time))
                since = None
            if e.kind is K.OBSERVATION_STARTED:
                observation = (e.time, end)
    if since is not None:
        infusing.append((since, end))
    return infusing, observation


def trend_png(record: SessionRecord, data: ReportData, markers: list[tuple[int, SessionEvent]]) -> bytes:
    ctx = record.ctx
    start, end = ctx.start, max(ctx.end, ctx.start + 60)
    to_num = mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC))
    zone, tc = ctx.zone, local_clock(ctx)

    def num(t: Any) -> Any:
        return np.asarray(t, dtype=np.float64) / 86400.0 + to_num

    fig = Figure(figsize=(FIG_W, FIG_H), dpi=200)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1, 1.15], "hspace": 0.12})
    fig.subplots_adjust(left=0.085, right=0.875, top=0.945, bottom=0.075)
    limits = limit_steps(record, end)
    baseline = ctx.session.baseline
    infusing, observation = infusion_periods(record.events, end)
    panels = (
        (axes[0], "HR / PR (/min)", ("hr", "pr")),
        (axes[1], "SpO2 (%)", ("spo2",)),
        (axes[2], "NIBP (mmHg)", ("nibp_sys", "nibp_map")),
    )
    for ax, title, keys in panels:
        ax.set_facecolor("white")
        for a, b in infusing:
            ax.axvspan(num(a), num(b), color="#dbe9f7", lw=0, zorder=0)
        if observation:
            ax.axvspan(num(observation[0]), num(observation[1]), color="#e6f2e6", lw=0, zorder=0)
        for _, e in markers:
            ax.axvline(num(e.time), color="#7b8794", lw=0.5, ls=(0, (2, 2)), zorder=1)
        ax.grid(True, axis="y", color="#e3e7ec", lw=0.5, zorder=0)
        ax.set_ylabel(title, fontsize=7, color="#1a2330")
        ax.tick_params(labelsize=6.5, colors="#37414d", length=2.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_color("#9aa5b1")
        for key in keys:
            for (direction, priority), (xs, ys) in limits.get(key, {}).items():
                color = MPL_PRIORITY[priority]
                ax.plot(num(xs), ys, drawstyle="steps-post", color=color, lw=0.8,
                        ls=(0, (4, 2)) if priority is Priority.MEDIUM else (0, (1.5, 1.5)), zorder=2)
                last = next((y for y in reversed(ys) if not math.isnan(y)), None)
                if last is not None:
                    word = "MAP" if key == "nibp_map" else ("<" if direction == "low" else ">")
                    ax.annotate(f"{word} {last:g}", (1.005, last), xycoords=("axes fraction", "data"),
                                fontsize=5.8, color=color, va="center", annotation_clip=False)
        base_key = keys[0]
        if base_key in baseline:
            ax.axhline(baseline[base_key], color="#6d4c9f", lw=0.7, ls=(0, (6, 2, 1, 2)), zorder=2)
            ax.annotate(f"baseline {baseline[base_key]:g}", (1.005, baseline[base_key]),
                        xycoords=("axes fraction", "data"), fontsize=5.8, color="#6d4c9f",
                        va="center", annotation_clip=False)

    colors_ = {"hr": "#12355b", "pr": "#4f9dd9", "spo2": "#0f7b6c"}
    for ax, key in ((axes[0], "pr"), (axes[0], "hr"), (axes[1], "spo2")):
        t, v = data.series[key].arrays()
        if t.size:
            t, v = broken_lines(t, v)
            w = downsample(Window(t, v, np.zeros(t.size, dtype=np.uint16)), PLOT_POINTS)
            ax.plot(num(w.times), w.values, color=colors_[key], lw=0.7 if key == "pr" else 0.8,
                    label=key.upper(), zorder=3)
    if data.series["pr"].times and data.series["hr"].times:
        axes[0].legend(loc="upper left", fontsize=6, frameon=False, ncol=2, handlelength=1.5)

    ax = axes[2]
    if data.cycles:
        t = num([c.time for c in data.cycles])
        sys_ = np.array([c.value("nibp_sys") if c.value("nibp_sys") is not None else np.nan
                         for c in data.cycles])
        dia = np.array([c.value("nibp_dia") if c.value("nibp_dia") is not None else np.nan
                        for c in data.cycles])
        mean = np.array([c.value("nibp_map") if c.value("nibp_map") is not None else np.nan
                         for c in data.cycles])
        ax.vlines(t, dia, sys_, color="#12355b", lw=0.9, zorder=3)
        ax.scatter(t, sys_, marker="v", s=14, color="#12355b", zorder=4, label="sys")
        ax.scatter(t, dia, marker="^", s=14, color="#12355b", zorder=4, label="dia")
        ax.scatter(t, mean, marker="_", s=22, color="#c2185b", zorder=4, label="MAP", linewidths=1.2)
        ax.legend(loc="upper left", fontsize=6, frameon=False, ncol=3, handlelength=1, scatterpoints=1)

    empty = {0: not (data.series["hr"].times or data.series["pr"].times),
             1: not data.series["spo2"].times, 2: not data.cycles}
    for i, nothing in empty.items():
        if nothing:
            axes[i].text(0.5, 0.5, "no readings", transform=axes[i].transAxes, ha="center",
                         va="center", fontsize=7, color="#7b8794", style="italic")

    # y ranges: the data and the limits, with a margin
    for ax_, keys, floor, ceil in ((axes[0], ("hr", "pr"), 30, 200), (axes[1], ("spo2",), 70, 100),
                                  (axes[2], NIBP_KEYS, 30, 260)):
        lo, hi = [], []
        for key in keys:
            if key in data.series:
                v = data.series[key].arrays()[1]
                v = v[np.isfinite(v)]
                if v.size:
                    lo.append(v.min())
                    hi.append(v.max())
            for _, ys in limits.get(key, {}).values():
                finite = [y for y in ys if not math.isnan(y)]
                lo += finite
                hi += finite
        if keys == NIBP_KEYS:
            for c in data.cycles:
                vals = [c.value(k) for k in NIBP_KEYS if c.value(k) is not None]
                lo += vals
                hi += vals
        if lo:
            a, b = min(lo), max(hi)
            pad = max(3.0, (b - a) * 0.08)
            top = min(ceil, b + pad) if keys != ("spo2",) else 100.5
            ax_.set_ylim(max(floor, a - pad), top)

    axes[2].set_xlim(num(start), num(end))
    span = end - start
    major, minor = next((mj, mn) for limit, mj, mn in (
        (50 * 60, 5, 1), (100 * 60, 10, 5), (3 * 3600, 30, 5), (8 * 3600, 60, 15), (math.inf, 120, 30))
        if span <= limit)
    axes[2].xaxis.set_major_locator(
        mdates.MinuteLocator(byminute=range(0, 60, major), tz=zone) if major < 60
        else mdates.HourLocator(byhour=range(0, 24, major // 60), tz=zone))
    axes[2].xaxis.set_minor_locator(mdates.MinuteLocator(byminute=range(0, 60, minor), tz=zone))
    axes[2].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=zone))
    axes[2].set_xlabel(f"time ({tc.label})", fontsize=7, color="#37414d")

    # numbered infusion-event markers along the top, alarm marks on their panels
    last_x, lift = -math.inf, 0
    for i, e in markers:  # marks closer than 2% of the width apart are stacked
        lift = lift + 9 if (e.time - last_x) < 0.02 * span else 0
        last_x = e.time
        axes[0].annotate(str(i), (num(e.time), 1.0), xycoords=("data", "axes fraction"),
                         xytext=(0, 4 + lift), textcoords="offset points", ha="center", va="bottom",
                         fontsize=5.8, color="white", annotation_clip=False,
                         bbox={"boxstyle": "circle,pad=0.18", "fc": "#37414d", "ec": "none"})
    panel_of = {"hr": axes[0], "pr": axes[0], "spo2": axes[1], "nibp_sys": axes[2],
                "nibp_dia": axes[2], "nibp_map": axes[2]}
    for a in record.alarms():
        target = panel_of.get(a.parameter or "")
        if a.kind is AlarmKind.PHYSIOLOGICAL and target is not None and start <= a.began <= end:
            target.plot([num(a.began)], [0.985], marker="v", ms=3.2, color=MPL_PRIORITY[a.priority],
                        transform=target.get_xaxis_transform(), clip_on=False, zorder=5, ls="none")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=200, facecolor="white")
    return buf.getvalue()

