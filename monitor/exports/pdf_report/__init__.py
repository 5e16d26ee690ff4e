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

Modules: :mod:`.style` (geometry, palette, fonts, text helpers), :mod:`.data` (one pass over
the readings), :mod:`.plots` (the trend figure), :mod:`.layout` (the document and its pages);
here :func:`write_pdf` puts them together.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate

from monitor.exports.pdf_report.data import collect
from monitor.exports.pdf_report.layout import build_story, canvas_class, styles
from monitor.exports.pdf_report.plots import trend_png
from monitor.exports.pdf_report.style import MARGIN, K, register_fonts
from monitor.exports.report_data import SessionRecord
from monitor.store.protocol import Store

__all__ = ["write_pdf"]


def write_pdf(store: Store, record: SessionRecord, out: BinaryIO) -> int:
    """The ``pdf`` format; returns the number of readings it summarises."""
    register_fonts()
    data = collect(store, record)
    chartable = {K.INFUSION_STARTED, K.RATE_CHANGED, K.INFUSION_PAUSED, K.INFUSION_RESUMED,
                 K.INFUSION_STOPPED, K.BOLUS, K.OBSERVATION_STARTED}
    markers = [(i, e) for i, e in enumerate((e for e in record.timeline if e.kind in chartable), start=1)]
    png = trend_png(record, data, markers)
    st = styles()
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
    doc.build(build_story(record, data, png, markers, st), canvasmaker=canvas_class(record))
    out.write(buf.getvalue())
    return data.readings
