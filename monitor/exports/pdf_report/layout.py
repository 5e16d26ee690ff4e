"""The document: reportlab (platypus) paragraph styles, tables, the story (identification,
timeline, baselines, the trend figure, NIBP table, alarm log, notes, sign-off) and the canvas
that draws every page's header and footer once the page count is known.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, Spacer, Table, TableStyle

from monitor.exports.pdf_report.data import ReportData
from monitor.exports.pdf_report.plots import Steps, limit_steps
from monitor.exports.pdf_report.style import (
    ACCENT,
    EVENT_LABELS,
    FIG_H,
    FIG_W,
    INK,
    MARGIN,
    MUTED,
    PAGE_H,
    PAGE_W,
    PARTIAL_RED,
    PRIORITY_FILL,
    RULE,
    ZEBRA,
    duration_text,
    elapsed_text,
    esc,
    fmt_value,
    local_clock,
    minutes_text,
    watermark_png,
)
from monitor.exports.report_data import AlarmSummary, SessionRecord
from monitor.localtime import LocalClock
from monitor.parameters import PARAMETERS
from monitor.readings import flag_names
from monitor.records import AlarmKind, SessionEvent

__all__ = ["build_story", "canvas_class", "styles"]


# --- the document -----------------------------------------------------------------------


def styles() -> dict[str, ParagraphStyle]:
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
    return Paragraph(esc(text), ParagraphStyle("hc", st["cellb"], textColor=colors.white, fontSize=7.4))


def build_story(record: SessionRecord, data: ReportData, png: bytes, markers: list[tuple[int, SessionEvent]],
           st: dict[str, ParagraphStyle]) -> list[Any]:
    ctx = record.ctx
    s = ctx.session
    width = PAGE_W - 2 * MARGIN
    story: list[Any] = []
    tc = local_clock(ctx)
    _clock, _stamp = tc.clock, tc.stamp
    zone = tc.label

    def tcell(t: float) -> Any:  # a table's time: wraps if it carries its zone (mixed)
        return Paragraph(_clock(t), st["cell"]) if tc.mixed else _clock(t)

    title = "Infusion session report" + (" — PARTIAL" if ctx.partial else "")
    story.append(Paragraph(esc(title), st["title"]))
    story.append(Paragraph(
        f"Session {esc(s.id)} · {esc(ctx.chair_label)} · "
        f"{tc.date(s.started_at)}", st["subtitle"]))
    story.append(Paragraph(esc(tc.describe()), st["subtitle"]))
    if ctx.partial:
        story.append(Spacer(1, 4))
        box = Table([[Paragraph(
            f"PARTIAL: the session had not ended when this report was made (state: "
            f"{esc(s.state.value.replace('_', ' '))}). It covers {_clock(s.started_at, named=True)} to "
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
        return [Paragraph(esc(key), st["key"]), Paragraph(value, st["value"])]

    planned = []
    if s.planned_minutes is not None:
        planned.append(f"infusion {minutes_text(s.planned_minutes)}")
    if s.nibp_interval_s is not None:
        planned.append(f"NIBP every {minutes_text(s.nibp_interval_s / 60)}")
    if s.observation_minutes is not None:
        planned.append(f"observation {minutes_text(s.observation_minutes)}")
    duration = (s.ended_at if s.ended_at is not None else ctx.now) - s.started_at
    ended = (f"{_stamp(s.ended_at)} by {esc(s.ended_by or '')}" if s.ended_at is not None
             else f"<font color='#b3261e'>not ended (exported {_stamp(ctx.now)})</font>")
    drug = " · ".join(esc(x) for x in (s.drug, s.dose) if x) or "—"
    chair = esc(ctx.chair_label) + (f" ({esc(s.chair)})" if ctx.chair_label != s.chair else "")
    chair += f", bay {esc(ctx.bay)}" if ctx.bay else ""
    rows = [
        kv("Patient", esc(s.patient)) + kv("Chair", chair),
        kv("Protocol", esc(ctx.protocol_label or s.protocol or "none")) + kv("Drug and dose", drug),
        kv("Planned", esc(", ".join(planned)) or "—") + kv("Session duration", duration_text(duration)),
        kv("Started", f"{_stamp(s.started_at)} by {esc(s.started_by)}") + kv("Ended", ended),
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
        rows.append([str(number.get(id(e), "")), tcell(e.time), elapsed_text(e.time, s.started_at),
                     Paragraph(esc(EVENT_LABELS.get(e.kind, e.kind.value)), st["cellb"]),
                     Paragraph(esc(e.detail), st["cell"]), Paragraph(esc(e.user), st["cell"])])
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
        stats = ([fmt_value(p.key, float(finite.min())), fmt_value(p.key, float(np.median(finite))),
                  fmt_value(p.key, float(finite.max()))] if finite.size else ["—", "—", "—"])
        rows.append([f"{p.label} ({p.unit})", fmt_value(p.key, s.baseline.get(p.key)), *stats,
                     f"{v.size:,}", str(missing) if missing else "—"])
    source = {"captured": "captured (mean of the first minutes)", "entered": "entered by a nurse",
              "confirmed": "from pre-infusion readings not in alarm, confirmed by a nurse"}
    story.append(_table(rows, [0.2 * width, 0.12 * width, 0.12 * width, 0.12 * width, 0.12 * width,
                               0.16 * width, 0.16 * width],
                        extra=[("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("FONT", (0, 1), (0, -1), "DejaVu-Bold",
                                                                     7.6, 9.4)]))
    story.append(Paragraph(
        f"Baseline {esc(source.get(s.baseline_source or '', 'not set'))}. Devices: "
        + (", ".join(f"{esc(d)} ({n:,} readings)" for d, n in sorted(data.devices.items())) or "none"),
        st["small"]))

    # NIBP readings
    story.append(Paragraph(f"NIBP readings ({len(data.cycles)})", st["h2"]))
    base_sys = s.baseline.get("nibp_sys")
    rows = [["#", _header_cell(f"Time ({zone})", st), "Since start", "Sys", "Dia", "MAP", "Sys vs base",
             "Device", "Flags"]]
    marks: list[tuple[Any, ...]] = []
    limits = limit_steps(record, record.ctx.end)
    for i, c in enumerate(data.cycles, start=1):
        sys_v = c.value("nibp_sys")
        delta = "—"
        if sys_v is not None and base_sys:
            pct = round((sys_v - base_sys) / base_sys * 100)
            delta = f"{pct:+d}%" if pct else "0%"
        rows.append([str(i), tcell(c.time), elapsed_text(c.time, s.started_at),
                     fmt_value("nibp_sys", sys_v), fmt_value("nibp_dia", c.value("nibp_dia")),
                     fmt_value("nibp_map", c.value("nibp_map")), delta,
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
            rows.append([tcell(e.time), Paragraph(esc(e.user), st["cell"]),
                         Paragraph(esc(e.detail), st["cell"])])
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


def _beyond(steps: Steps, t: float, value: float | None) -> bool:
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
        return "<br/>".join(f"{_clock(t)} {esc(u)}" for t, u in items) or "—"

    paused = "<br/>".join(f"{_clock(t)} {esc(u)}" + (f" (to {_clock(until)})" if until else "")
                          for t, u, until in a.paused) or "—"
    kind = " <font color='#5b6675'>(technical)</font>" if a.kind is AlarmKind.TECHNICAL else ""
    if a.cleared_at is not None:
        ended = f"{_clock(a.cleared_at)}<br/><font size='6.6' color='#5b6675'>{esc(a.cleared_note)}</font>"
    else:
        ended = f"<font color='#b3261e'>still {esc(a.state.value)}</font>"
    alarm = f"<b>{esc(a.message)}</b>{kind}<br/><font size='6.6' color='#5b6675'>{esc(a.code)}</font>"
    when = _clock(a.began) + (f"<br/><font size='6.6' color='#5b6675'>raised {_clock(a.raised_at)}</font>"
                              if a.raised_at - a.began >= 1 else "")
    return [str(i), Paragraph(when, st["cell"]), f"{a.priority.label} {a.priority.marker}",
            Paragraph(alarm, st["cell"]), Paragraph(who(a.acknowledged), st["cell"]),
            Paragraph(paused, st["cell"]), Paragraph(ended, st["cell"])]


def canvas_class(record: SessionRecord) -> Callable[..., rl_canvas.Canvas]:
    """A canvas that draws every page's header and footer once the page count is known."""
    ctx = record.ctx
    s = ctx.session
    tc = local_clock(ctx)

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
                self.drawImage(ImageReader(io.BytesIO(watermark_png())), (PAGE_W - size) / 2,
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


