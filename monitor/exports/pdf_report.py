"""The printable session report (PDF) for the patient's chart.

Contents, in order: identification (patient label or MRN, chair, bay, protocol with drug,
dose and planned durations, who started and ended the session), the infusion timeline
(every session event with its time, time since start and who recorded it), baseline and
range of each parameter, trend plots of HR/PR, SpO2 and NIBP with the alarm limits in force
(as they changed), the infusion and observation periods and numbered event markers, a
table of every NIBP reading, the alarm log (raised, priority, who acknowledged or paused it
and when, how it ended), the notes, and a sign-off line. Every page has a header naming the
patient and session and a footer with the export time, Chairside's version and "page n of
m"; a partial export (session still running) says so in the title, on every page's footer
and in a faint watermark. Times are local, in the bay's zone (``[bay] timezone``), and say
so: a line under the title names the zone and its UTC offset ("Times are Europe/Berlin
(UTC+01:00)"), times in prose and in the footer carry the zone's abbreviation ("14:03:22
CET"), table columns of times name it in their header ("Time (CET)"), and the trends' axis
too. Should the zone's offset change within the report (daylight saving), every time
carries its abbreviation. The machine-readable formats (CSV, FHIR, HL7) stay UTC.

Rendering: reportlab (platypus) lays out the document; matplotlib (Agg, through its
object-oriented API, no pyplot: safe in a web server's threads) draws the trends to a PNG
at 200 dpi. Both are wheels from PyPI that need nothing else on the machine. The fonts are
DejaVu Sans, taken from matplotlib's own data folder and embedded, so any label or name
prints, whatever its script, on any machine.

Readings are streamed once from the store; only HR, PR and SpO2 as float arrays (16 bytes a
sample) and the NIBP cycles are kept, then min/max-decimated for plotting.
"""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

import matplotlib
import numpy as np
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from monitor.exports.report_data import (
    NIBP_KEYS,
    AlarmSummary,
    ExportContext,
    NibpCycle,
    SessionRecord,
    session_readings,
    with_nibp_cycles,
)
from monitor.localtime import LocalClock
from monitor.parameters import PARAMETERS, by_key
from monitor.readings import flag_names
from monitor.records import AlarmKind, Priority, SessionEvent, SessionEventKind
from monitor.ring_buffer import Window, downsample
from monitor.store.protocol import Store

__all__ = ["write_pdf"]

K = SessionEventKind
CONTINUOUS = ("hr", "pr", "spo2")
PLOT_POINTS = 2400  # per series, after min/max decimation
GAP_S = 15.0  # a pause in a continuous series longer than this breaks its line
FIG_W, FIG_H = 7.1, 5.2  # inches: the trends fit on the first page under the identification
PAGE_W, PAGE_H = A4
MARGIN = 16 * mm

INK = colors.HexColor("#1a2330")
MUTED = colors.HexColor("#5b6675")
ACCENT = colors.HexColor("#1f3a5f")
RULE = colors.HexColor("#c5ccd6")
ZEBRA = colors.HexColor("#f3f5f8")
PARTIAL_RED = colors.HexColor("#b3261e")
PRIORITY_FILL = {Priority.HIGH: colors.HexColor("#f6d5d3"), Priority.MEDIUM: colors.HexColor("#fbe9c6"),
                 Priority.LOW: colors.HexColor("#d5eef3")}
MPL_PRIORITY = {Priority.HIGH: "#c62828", Priority.MEDIUM: "#d98c00", Priority.LOW: "#1b8aa3"}
EVENT_LABELS = {
    K.SESSION_STARTED: "Session started", K.INFUSION_STARTED: "Infusion started",
    K.RATE_CHANGED: "Rate changed", K.INFUSION_PAUSED: "Infusion paused",
    K.INFUSION_RESUMED: "Infusion resumed", K.INFUSION_STOPPED: "Infusion stopped",
    K.BOLUS: "Bolus", K.NOTE: "Note", K.BASELINE_SET: "Baseline set",
    K.LIMITS_CHANGED: "Limits changed", K.OBSERVATION_STARTED: "Observation started",
    K.SESSION_ENDED: "Session ended",
}

_fonts_ready = False
_watermark: bytes | None = None


def _watermark_png() -> bytes:
    """A faint diagonal "PARTIAL" on a transparent square, drawn once."""
    global _watermark
    if _watermark is None:
        fig = Figure(figsize=(6, 6), dpi=100)
        FigureCanvasAgg(fig)
        fig.patch.set_alpha(0)
        fig.text(0.5, 0.5, "PARTIAL", rotation=50, ha="center", va="center", fontsize=110,
                 fontweight="bold", color="#b3261e", alpha=0.07)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", transparent=True)
        _watermark = buf.getvalue()
    return _watermark


def _register_fonts() -> None:
    """DejaVu Sans from matplotlib's data (always there with matplotlib), embedded."""
    global _fonts_ready
    if _fonts_ready:
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name, file in (("DejaVu", "DejaVuSans.ttf"), ("DejaVu-Bold", "DejaVuSans-Bold.ttf"),
                       ("DejaVu-Oblique", "DejaVuSans-Oblique.ttf"),
                       ("DejaVu-BoldOblique", "DejaVuSans-BoldOblique.ttf")):
        pdfmetrics.registerFont(TTFont(name, str(ttf / file)))
    pdfmetrics.registerFontFamily("DejaVu", normal="DejaVu", bold="DejaVu-Bold",
                                  italic="DejaVu-Oblique", boldItalic="DejaVu-BoldOblique")
    _fonts_ready = True


# --- what the report shows, gathered in one pass over the readings -----------------------


@dataclass(slots=True)
class _Series:
    times: array = field(default_factory=lambda: array("d"))
    values: array = field(default_factory=lambda: array("d"))
    missing: int = 0  # readings without a value

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.frombuffer(self.times, dtype=np.float64), np.frombuffer(self.values, dtype=np.float64)


@dataclass(slots=True)
class _Data:
    series: dict[str, _Series]
    cycles: list[NibpCycle]
    devices: dict[str, int]  # device -> readings
    readings: int


def _collect(store: Store, record: SessionRecord) -> _Data:
    series = {key: _Series() for key in CONTINUOUS}
    cycles: list[NibpCycle] = []
    devices: dict[str, int] = {}
    n = 0
    nan = math.nan
    for item in with_nibp_cycles(session_readings(store, record.ctx)):
        if isinstance(item, NibpCycle):
            cycles.append(item)
            n += len(item.readings)
            devices[item.device] = devices.get(item.device, 0) + len(item.readings)
            continue
        n += 1
        devices[item.device] = devices.get(item.device, 0) + 1
        s = series.get(item.parameter)
        if s is None:
            continue
        s.times.append(item.device_time)
        if item.value is None:
            s.values.append(nan)
            s.missing += 1
        else:
            s.values.append(item.value)
    cycles.sort(key=lambda c: c.time)
    return _Data(series, cycles, devices, n)


# --- text helpers -----------------------------------------------------------------------


def _local_clock(ctx: ExportContext) -> LocalClock:
    """The report's times: in the bay's zone, over the session up to the export."""
    return LocalClock(ctx.zone, ctx.start, max(ctx.end, ctx.now))


def _elapsed(t: float, start: float) -> str:
    minutes = int((t - start) // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _minutes(value: float | None) -> str:
    return "—" if value is None else f"{value:g} min"


def _fmt(key: str, value: float | None) -> str:
    p = by_key(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return p.format(value) if p else f"{value:g}"


def _x(text: Any) -> str:
    return escape(str(text))


# --- the trend figure -------------------------------------------------------------------


_Steps = dict[tuple[str, Priority], tuple[list[float], list[float]]]  # (direction, priority) -> xs, ys


def _limit_steps(record: SessionRecord, end: float) -> dict[str, _Steps]:
    """parameter -> (direction, priority) -> step series (times, thresholds; NaN: none)."""
    timeline = record.rules_timeline()
    keys: set[tuple[str, str, Priority]] = set()
    for _, rules, _ in timeline:
        keys.update((r.parameter, r.direction, r.priority) for r in rules)
    out: dict[str, _Steps] = {}
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


def _broken(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN inserted where the series pauses longer than GAP_S, so lines do not bridge gaps."""
    if times.size < 2:
        return times, values
    gaps = np.flatnonzero(np.diff(times) > GAP_S)
    if gaps.size == 0:
        return times, values
    return (np.insert(times, gaps + 1, times[gaps] + GAP_S / 2),
            np.insert(values, gaps + 1, np.nan))


def _periods(events: list[SessionEvent], end: float) -> tuple[list[tuple[float, float]],
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


def _trend_png(record: SessionRecord, data: _Data, markers: list[tuple[int, SessionEvent]]) -> bytes:
    ctx = record.ctx
    start, end = ctx.start, max(ctx.end, ctx.start + 60)
    to_num = mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC))
    zone, tc = ctx.zone, _local_clock(ctx)

    def num(t: Any) -> Any:
        return np.asarray(t, dtype=np.float64) / 86400.0 + to_num

    fig = Figure(figsize=(FIG_W, FIG_H), dpi=200)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1, 1.15], "hspace": 0.12})
    fig.subplots_adjust(left=0.085, right=0.875, top=0.945, bottom=0.075)
    limits = _limit_steps(record, end)
    baseline = ctx.session.baseline
    infusing, observation = _periods(record.events, end)
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
            t, v = _broken(t, v)
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


# --- the document -----------------------------------------------------------------------


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName="DejaVu", fontSize=8.2, leading=10.4, textColor=INK,
                          alignment=TA_LEFT)
    return {
        "base": base,
        "title": ParagraphStyle("title", base, fontName="DejaVu-Bold", fontSize=17, leading=21,
                                textColor=ACCENT, spaceAfter=1),
        "subtitle": ParagraphStyle("subtitle", base, fontSize=8.5, leading=11, textColor=MUTED),
        "h2": ParagraphStyle("h2", base, fontName="DejaVu-Bold", fontSize=10.5, leading=13,
                             textColor=ACCENT, spaceBefore=9, spaceAfter=4, keepWithNext=1),
        "cell": ParagraphStyle("cell", base, fontSize=7.6, leading=9.4),
        "cellb": ParagraphStyle("cellb", base, fontName="DejaVu-Bold", fontSize=7.6, leading=9.4),
        "key": ParagraphStyle("key", base, fontSize=7.2, leading=9, textColor=MUTED),
        "value": ParagraphStyle("value", base, fontName="DejaVu-Bold", fontSize=8.6, leading=10.6),
        "small": ParagraphStyle("small", base, fontSize=6.8, leading=8.6, textColor=MUTED),
        "partial": ParagraphStyle("partial", base, fontName="DejaVu-Bold", fontSize=8.6, leading=11,
                                  textColor=PARTIAL_RED),
    }


def _table(rows: list[list[Any]], widths: list[float], *, header: bool = True,
           extra: list[tuple[Any, ...]] | None = None, zebra: bool = True) -> Table:
    t = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    cmds: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), "DejaVu", 7.6, 9.4),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3.5),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
    ]
    if header:
        cmds += [("BACKGROUND", (0, 0), (-1, 0), ACCENT), ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                 ("FONT", (0, 0), (-1, 0), "DejaVu-Bold", 7.4, 9.2),
                 ("LINEBELOW", (0, 0), (-1, 0), 0, ACCENT)]
    if zebra:
        cmds.append(("ROWBACKGROUNDS", (0, 1 if header else 0), (-1, -1), [colors.white, ZEBRA]))
    t.setStyle(TableStyle(cmds + (extra or [])))
    return t


def _header_cell(text: str, st: dict[str, ParagraphStyle]) -> Paragraph:
    return Paragraph(_x(text), ParagraphStyle("hc", st["cellb"], textColor=colors.white, fontSize=7.4))


def _story(record: SessionRecord, data: _Data, png: bytes, markers: list[tuple[int, SessionEvent]],
           st: dict[str, ParagraphStyle]) -> list[Any]:
    ctx = record.ctx
    s = ctx.session
    width = PAGE_W - 2 * MARGIN
    story: list[Any] = []
    tc = _local_clock(ctx)
    _clock, _stamp = tc.clock, tc.stamp
    zone = tc.label

    def tcell(t: float) -> Any:  # a table's time: wraps if it carries its zone (mixed)
        return Paragraph(_clock(t), st["cell"]) if tc.mixed else _clock(t)

    title = "Infusion session report" + (" — PARTIAL" if ctx.partial else "")
    story.append(Paragraph(_x(title), st["title"]))
    story.append(Paragraph(
        f"Session {_x(s.id)} · {_x(ctx.chair_label)} · "
        f"{tc.date(s.started_at)}", st["subtitle"]))
    story.append(Paragraph(_x(tc.describe()), st["subtitle"]))
    if ctx.partial:
        story.append(Spacer(1, 4))
        box = Table([[Paragraph(
            f"PARTIAL: the session had not ended when this report was made (state: "
            f"{_x(s.state.value.replace('_', ' '))}). It covers {_clock(s.started_at, named=True)} to "
            f"{_clock(ctx.now, named=True)} only; export again after the session ends for the complete "
            "record.", st["partial"])]], colWidths=[width])
        box.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.9, PARTIAL_RED),
                                 ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fbeceb")),
                                 ("LEFTPADDING", (0, 0), (-1, -1), 6), ("TOPPADDING", (0, 0), (-1, -1), 4),
                                 ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]))
        story.append(box)
    story.append(Spacer(1, 7))

    # identification
    def kv(key: str, value: str) -> list[Any]:
        return [Paragraph(_x(key), st["key"]), Paragraph(value, st["value"])]

    planned = []
    if s.planned_minutes is not None:
        planned.append(f"infusion {_minutes(s.planned_minutes)}")
    if s.nibp_interval_s is not None:
        planned.append(f"NIBP every {_minutes(s.nibp_interval_s / 60)}")
    if s.observation_minutes is not None:
        planned.append(f"observation {_minutes(s.observation_minutes)}")
    duration = (s.ended_at if s.ended_at is not None else ctx.now) - s.started_at
    ended = (f"{_stamp(s.ended_at)} by {_x(s.ended_by or '')}" if s.ended_at is not None
             else f"<font color='#b3261e'>not ended (exported {_stamp(ctx.now)})</font>")
    drug = " · ".join(_x(x) for x in (s.drug, s.dose) if x) or "—"
    chair = _x(ctx.chair_label) + (f" ({_x(s.chair)})" if ctx.chair_label != s.chair else "")
    chair += f", bay {_x(ctx.bay)}" if ctx.bay else ""
    rows = [
        kv("Patient", _x(s.patient)) + kv("Chair", chair),
        kv("Protocol", _x(ctx.protocol_label or s.protocol or "none")) + kv("Drug and dose", drug),
        kv("Planned", _x(", ".join(planned)) or "—") + kv("Session duration", _duration(duration)),
        kv("Started", f"{_stamp(s.started_at)} by {_x(s.started_by)}") + kv("Ended", ended),
        kv("Infusion", f"{_clock(s.infusion_started_at, named=True)} to "
           f"{_clock(s.infusion_stopped_at, named=s.infusion_stopped_at is not None)}"
           if s.infusion_started_at else "not started")
        + kv("Observation", f"from {_clock(s.observation_started_at, named=True)}"
             if s.observation_started_at else "—"),
    ]
    ident = Table(rows, colWidths=[0.16 * width, 0.34 * width, 0.15 * width, 0.35 * width], hAlign="LEFT")
    ident.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("BOX", (0, 0), (-1, -1), 0.6, RULE),
        ("LINEBELOW", (0, 0), (-1, -2), 0.25, RULE), ("BACKGROUND", (0, 0), (0, -1), ZEBRA),
        ("BACKGROUND", (2, 0), (2, -1), ZEBRA), ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3), ("LEFTPADDING", (0, 0), (-1, -1), 5),
    ]))
    story.append(ident)

    # trends
    img_w = width
    img = Image(io.BytesIO(png), width=img_w, height=img_w * FIG_H / FIG_W)
    legend = Paragraph(
        "Shaded blue: infusion running; shaded green: observation. Dashed lines: medium-priority "
        "alarm limits, dotted: high-priority (red), as in force at each time; purple: baseline. "
        "Triangles on a panel's top edge: alarms raised. Numbered marks: the timeline's events.",
        st["small"])
    story.append(KeepTogether([Paragraph("Trends", st["h2"]), img, legend]))

    # timeline
    story.append(Paragraph("Infusion timeline", st["h2"]))
    number = {id(e): i for i, e in markers}
    rows = [["#", _header_cell(f"Time ({zone})", st), "Since start", "Event", "Detail", "By"]]
    for e in record.timeline:
        rows.append([str(number.get(id(e), "")), tcell(e.time), _elapsed(e.time, s.started_at),
                     Paragraph(_x(EVENT_LABELS.get(e.kind, e.kind.value)), st["cellb"]),
                     Paragraph(_x(e.detail), st["cell"]), Paragraph(_x(e.user), st["cell"])])
    story.append(_table(rows, [0.05 * width, 0.11 * width, 0.1 * width, 0.19 * width, 0.40 * width,
                               0.15 * width]))

    # baseline and range
    story.append(Paragraph("Baseline and range", st["h2"]))
    rows = [["", "Baseline", "Minimum", "Median", "Maximum", "Readings", "Without value"]]
    for p in PARAMETERS:
        if p.key in data.series:
            v = data.series[p.key].arrays()[1]
            missing = data.series[p.key].missing
        else:
            v = np.array([c.value(p.key) for c in data.cycles if c.value(p.key) is not None], dtype=float)
            missing = sum(1 for c in data.cycles if p.key in c.readings and c.value(p.key) is None)
            v = np.concatenate([v, np.full(missing, np.nan)])
        finite = v[np.isfinite(v)]
        stats = ([_fmt(p.key, float(finite.min())), _fmt(p.key, float(np.median(finite))),
                  _fmt(p.key, float(finite.max()))] if finite.size else ["—", "—", "—"])
        rows.append([f"{p.label} ({p.unit})", _fmt(p.key, s.baseline.get(p.key)), *stats,
                     f"{v.size:,}", str(missing) if missing else "—"])
    source = {"captured": "captured (mean of the first minutes)", "entered": "entered by a nurse",
              "confirmed": "from pre-infusion readings not in alarm, confirmed by a nurse"}
    story.append(_table(rows, [0.2 * width, 0.12 * width, 0.12 * width, 0.12 * width, 0.12 * width,
                               0.16 * width, 0.16 * width],
                        extra=[("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("FONT", (0, 1), (0, -1), "DejaVu-Bold",
                                                                     7.6, 9.4)]))
    story.append(Paragraph(
        f"Baseline {_x(source.get(s.baseline_source or '', 'not set'))}. Devices: "
        + (", ".join(f"{_x(d)} ({n:,} readings)" for d, n in sorted(data.devices.items())) or "none"),
        st["small"]))

    # NIBP readings
    story.append(Paragraph(f"NIBP readings ({len(data.cycles)})", st["h2"]))
    base_sys = s.baseline.get("nibp_sys")
    rows = [["#", _header_cell(f"Time ({zone})", st), "Since start", "Sys", "Dia", "MAP", "Sys vs base",
             "Device", "Flags"]]
    marks: list[tuple[Any, ...]] = []
    limits = _limit_steps(record, record.ctx.end)
    for i, c in enumerate(data.cycles, start=1):
        sys_v = c.value("nibp_sys")
        delta = "—"
        if sys_v is not None and base_sys:
            pct = round((sys_v - base_sys) / base_sys * 100)
            delta = f"{pct:+d}%" if pct else "0%"
        rows.append([str(i), tcell(c.time), _elapsed(c.time, s.started_at), _fmt("nibp_sys", sys_v),
                     _fmt("nibp_dia", c.value("nibp_dia")), _fmt("nibp_map", c.value("nibp_map")), delta,
                     c.device, ", ".join(flag_names(c.flags)).lower().replace("_", " ")])
        for col, key in ((3, "nibp_sys"), (5, "nibp_map")):
            if _beyond(limits.get(key, {}), c.time, c.value(key)):
                marks += [("TEXTCOLOR", (col, i), (col, i), PARTIAL_RED),
                          ("FONT", (col, i), (col, i), "DejaVu-Bold", 7.6, 9.4)]
    if data.cycles:
        story.append(_table(rows, [0.05 * width, 0.11 * width, 0.1 * width, 0.08 * width, 0.08 * width,
                                   0.08 * width, 0.12 * width, 0.19 * width, 0.19 * width],
                            extra=[("ALIGN", (3, 0), (6, -1), "RIGHT"), *marks]))
        story.append(Paragraph("Bold red: beyond an alarm limit in force at the time.", st["small"]))
    else:
        story.append(Paragraph("No NIBP reading in this session.", st["base"]))

    # alarms
    alarms = record.alarms()
    story.append(Paragraph(f"Alarm log ({len(alarms)})", st["h2"]))
    if alarms:
        rows = [[_header_cell(h, st) for h in
                 ("#", f"Began ({zone})", "Priority", "Alarm", f"Acknowledged ({zone})",
                  f"Audio paused ({zone})", f"Ended ({zone})")]]
        extra: list[tuple[Any, ...]] = []
        for i, a in enumerate(alarms, start=1):
            rows.append(_alarm_row(i, a, st, tc))
            extra.append(("BACKGROUND", (2, i), (2, i), PRIORITY_FILL[a.priority]))
        story.append(_table(rows, [w * width for w in (0.045, 0.085, 0.095, 0.235, 0.17, 0.21, 0.16)],
                            extra=extra))
    else:
        story.append(Paragraph("No alarm during this session.", st["base"]))

    # notes, and the sign-off kept on the same page as the last of them
    notes = record.notes
    closing: list[Any] = [Paragraph(f"Notes ({len(notes)})", st["h2"])]
    if notes:
        rows = [[_header_cell(f"Time ({zone})", st), "By", "Note"]]
        for e in notes:
            rows.append([tcell(e.time), Paragraph(_x(e.user), st["cell"]),
                         Paragraph(_x(e.detail), st["cell"])])
        closing.append(_table(rows, [0.11 * width, 0.15 * width, 0.74 * width]))
    else:
        closing.append(Paragraph("No notes.", st["base"]))
    closing.append(Spacer(1, 14))
    sign = Table([["Reviewed by", "", "Signature", "", "Date and time", ""]],
                 colWidths=[w * width for w in (0.12, 0.22, 0.1, 0.22, 0.12, 0.22)])
    sign.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), "DejaVu", 7.4), ("TEXTCOLOR", (0, 0), (-1, -1), MUTED),
        ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
        *(("LINEBELOW", (c, 0), (c, 0), 0.5, INK) for c in (1, 3, 5)),
    ]))
    closing.append(sign)
    story.append(KeepTogether(closing))
    return story


def _beyond(steps: _Steps, t: float, value: float | None) -> bool:
    if value is None:
        return False
    for (direction, _), (xs, ys) in steps.items():
        limit = math.nan
        for x, y in zip(xs, ys, strict=True):
            if x <= t:
                limit = y
        if not math.isnan(limit) and (value < limit if direction == "low" else value > limit):
            return True
    return False


def _alarm_row(i: int, a: AlarmSummary, st: dict[str, ParagraphStyle], tc: LocalClock) -> list[Any]:
    _clock = tc.clock

    def who(items: list[tuple[float, str]]) -> str:
        return "<br/>".join(f"{_clock(t)} {_x(u)}" for t, u in items) or "—"

    paused = "<br/>".join(f"{_clock(t)} {_x(u)}" + (f" (to {_clock(until)})" if until else "")
                          for t, u, until in a.paused) or "—"
    kind = " <font color='#5b6675'>(technical)</font>" if a.kind is AlarmKind.TECHNICAL else ""
    if a.cleared_at is not None:
        ended = f"{_clock(a.cleared_at)}<br/><font size='6.6' color='#5b6675'>{_x(a.cleared_note)}</font>"
    else:
        ended = f"<font color='#b3261e'>still {_x(a.state.value)}</font>"
    alarm = f"<b>{_x(a.message)}</b>{kind}<br/><font size='6.6' color='#5b6675'>{_x(a.code)}</font>"
    when = _clock(a.began) + (f"<br/><font size='6.6' color='#5b6675'>raised {_clock(a.raised_at)}</font>"
                              if a.raised_at - a.began >= 1 else "")
    return [str(i), Paragraph(when, st["cell"]), f"{a.priority.label} {a.priority.marker}",
            Paragraph(alarm, st["cell"]), Paragraph(who(a.acknowledged), st["cell"]),
            Paragraph(paused, st["cell"]), Paragraph(ended, st["cell"])]


def _canvas_class(record: SessionRecord) -> Callable[..., rl_canvas.Canvas]:
    """A canvas that draws every page's header and footer once the page count is known."""
    ctx = record.ctx
    s = ctx.session
    tc = _local_clock(ctx)

    class NumberedCanvas(rl_canvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            page = self._pageNumber
            self.saveState()
            if ctx.partial:  # an image, so that text extraction reads only the real text
                size = 150 * mm
                self.drawImage(ImageReader(io.BytesIO(_watermark_png())), (PAGE_W - size) / 2,
                               (PAGE_H - size) / 2, size, size, mask="auto")
            top = PAGE_H - 10 * mm
            self.setStrokeColor(ACCENT)
            self.setLineWidth(1.2)
            self.line(MARGIN, top - 2.2 * mm, PAGE_W - MARGIN, top - 2.2 * mm)
            self.setFont("DejaVu-Bold", 8)
            self.setFillColor(ACCENT)
            self.drawString(MARGIN, top, "CHAIRSIDE")
            self.setFont("DejaVu", 7.5)
            self.setFillColor(MUTED)
            self.drawString(MARGIN + self.stringWidth("CHAIRSIDE", "DejaVu-Bold", 8) + 6, top,
                            "Infusion session report")
            if ctx.partial:
                self.setFillColor(PARTIAL_RED)
                self.setFont("DejaVu-Bold", 7.5)
                x = MARGIN + self.stringWidth("CHAIRSIDE  Infusion session report  ", "DejaVu", 7.5) + 12
                self.drawString(x, top, "PARTIAL")
            self.setFont("DejaVu", 7.5)
            self.setFillColor(INK)
            self.drawRightString(PAGE_W - MARGIN, top,
                                 f"Patient {s.patient}  ·  {ctx.chair_label}  ·  session {s.id}")
            bottom = 9 * mm
            self.setStrokeColor(RULE)
            self.setLineWidth(0.5)
            self.line(MARGIN, bottom + 3.6 * mm, PAGE_W - MARGIN, bottom + 3.6 * mm)
            self.setFont("DejaVu", 6.8)
            self.setFillColor(MUTED)
            self.drawString(MARGIN, bottom, f"Exported {tc.stamp(ctx.now)} · Chairside {ctx.software_version}"
                            " · not a medical device")
            self.setFillColor(INK)
            self.setFont("DejaVu-Bold", 7)
            page_text = f"Page {page} of {total}"
            self.drawRightString(PAGE_W - MARGIN, bottom, page_text)
            if ctx.partial:
                self.setFillColor(PARTIAL_RED)
                self.drawRightString(PAGE_W - MARGIN - self.stringWidth(page_text, "DejaVu-Bold", 7) - 14,
                                     bottom, "PARTIAL — session not ended")
            self.restoreState()

    return NumberedCanvas


def write_pdf(store: Store, record: SessionRecord, out: BinaryIO) -> int:
    """The ``pdf`` format; returns the number of readings it summarises."""
    _register_fonts()
    data = _collect(store, record)
    chartable = {K.INFUSION_STARTED, K.RATE_CHANGED, K.INFUSION_PAUSED, K.INFUSION_RESUMED,
                 K.INFUSION_STOPPED, K.BOLUS, K.OBSERVATION_STARTED}
    markers = [(i, e) for i, e in enumerate((e for e in record.timeline if e.kind in chartable), start=1)]
    png = _trend_png(record, data, markers)
    st = _styles()
    ctx = record.ctx
    buf = io.BytesIO()
    doc = BaseDocTemplate(
        buf, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=17 * mm, bottomMargin=16 * mm,
        title=f"Infusion session report {ctx.session.id}" + (" (partial)" if ctx.partial else ""),
        author="Chairside", subject=f"Patient {ctx.session.patient}, {ctx.chair_label}",
        creator=f"Chairside {ctx.software_version}")
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    doc.build(_story(record, data, png, markers, st), canvasmaker=_canvas_class(record))
    out.write(buf.getvalue())
    return data.readings
