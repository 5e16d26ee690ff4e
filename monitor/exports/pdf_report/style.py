"""The report's look and words: page geometry, palette, labels of session events, the
embedded DejaVu fonts, the "PARTIAL" watermark, and the text helpers every part uses (local
times, elapsed and durations, parameter values, XML escaping for reportlab's paragraphs).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from monitor.exports.report_data import ExportContext
from monitor.localtime import LocalClock
from monitor.parameters import by_key
from monitor.records import Priority, SessionEventKind

__all__ = ["ACCENT", "CONTINUOUS", "EVENT_LABELS", "FIG_H", "FIG_W", "GAP_S", "INK", "MARGIN", "MPL_PRIORITY",
           "MUTED", "PAGE_H", "PAGE_W", "PARTIAL_RED", "PLOT_POINTS", "PRIORITY_FILL", "RULE", "ZEBRA", "K",
           "duration_text", "elapsed_text", "esc", "fmt_value", "local_clock", "minutes_text",
           "register_fonts", "watermark_png"]

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


def watermark_png() -> bytes:
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


def register_fonts() -> None:
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


# --- text helpers -----------------------------------------------------------------------


def local_clock(ctx: ExportContext) -> LocalClock:
    """The report's times: in the bay's zone, over the session up to the export."""
    return LocalClock(ctx.zone, ctx.start, max(ctx.end, ctx.now))


def elapsed_text(t: float, start: float) -> str:
    minutes = int((t - start) // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def minutes_text(value: float | None) -> str:
    return "—" if value is None else f"{value:g} min"


def fmt_value(key: str, value: float | None) -> str:
    p = by_key(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return p.format(value) if p else f"{value:g}"


def esc(text: Any) -> str:
    return escape(str(text))


# --- the trend figure -------------------------------------------------------------------

