"""Post-session exports for the chart: one entry point, five formats.

    export_session(store, session, "pdf", out, now, config=config)

========  ===================================================================  =======================
format    what                                                                 media type
========  ===================================================================  =======================
``csv``   the readings, docs/protocols.md#csv-export columns                   text/csv
``zip``   readings, alarms, events, actions and session CSV files in one zip   application/zip
``fhir``  FHIR R4 JSON Bundle (collection): vital-signs Observations, ...       application/fhir+json
``hl7``   HL7 v2.6 ORU^R01 (IHE PCD-01), one message a minute, MLLP-framed      application/hl7-v2
``pdf``   the printable session report                                         application/pdf
========  ===================================================================  =======================

The command line (``chairside export``) and the HTTP API (``GET /api/v1/sessions/<id>/export``)
both call :func:`export_session`, so the same session gives the same bytes either way (bar the
export time). A session that has not ended exports *partial*: up to ``now``, marked so in
every format but ``csv`` (whose columns are a contract; its file name carries the mark).
Every format streams the readings from the store; none holds a session's readings in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from monitor.errors import CoreError
from monitor.exports.csv_export import write_readings_csv, write_zip
from monitor.exports.report_data import ExportContext, load_record, make_context
from monitor.records import Session
from monitor.store.protocol import Store

if TYPE_CHECKING:
    from monitor.config import BayConfig

__all__ = ["FORMATS", "ExportFormat", "ExportResult", "UnknownFormat", "export_filename",
           "export_session"]


@dataclass(frozen=True, slots=True)
class ExportFormat:
    name: str
    description: str
    mimetype: str
    extension: str
    binary: bool  # not text: refused on a terminal


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("csv", "the readings as CSV (docs/protocols.md#csv-export)", "text/csv", "csv", False),
    ExportFormat("zip", "readings, alarms, events, actions and session as CSV files in a zip",
                 "application/zip", "zip", True),
    ExportFormat("fhir", "FHIR R4 JSON Bundle of vital-signs Observations", "application/fhir+json",
                 "fhir.json", False),
    ExportFormat("hl7", "HL7 v2.6 ORU^R01 (IHE PCD-01), one message a minute, MLLP-framed",
                 "application/hl7-v2", "hl7", True),
    ExportFormat("pdf", "the printable session report", "application/pdf", "pdf", True),
)}


class UnknownFormat(CoreError, ValueError):
    def __init__(self, fmt: str) -> None:
        super().__init__(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.format = fmt


@dataclass(frozen=True, slots=True)
class ExportResult:
    format: str
    readings: int
    partial: bool


def export_filename(session: Session, fmt: str) -> str:
    """``chairside-<chair>-<session>[-partial].<extension>``."""
    spec = FORMATS.get(fmt)
    if spec is None:
        raise UnknownFormat(fmt)
    partial = "" if session.ended_at is not None else "-partial"
    return f"chairside-{session.chair}-{session.id}{partial}.{spec.extension}"


def export_session(store: Store, session: Session, fmt: str, out: BinaryIO, now: float, *,
                   config: BayConfig | None = None) -> ExportResult:
    """Write ``session`` in format ``fmt`` to the binary file ``out`` (which need not be
    seekable). ``now`` is the export time, and the end of the readings of a session still
    running; ``config`` supplies the chair's label, the bay and the protocol's limits.
    Raises :class:`UnknownFormat`."""
    if fmt not in FORMATS:
        raise UnknownFormat(fmt)
    ctx: ExportContext = make_context(session, now, config)
    if fmt == "csv":
        n = write_readings_csv(store, ctx, out)
    else:
        record = load_record(store, ctx)
        if fmt == "zip":
            n = write_zip(store, record, out)
        elif fmt == "fhir":
            from monitor.exports.fhir_export import write_fhir

            n = write_fhir(store, record, out)
        elif fmt == "hl7":
            from monitor.exports.hl7_export import write_hl7

            n = write_hl7(store, record, out)
        else:
            from monitor.exports.pdf_report import write_pdf  # reportlab, matplotlib: load on use

            n = write_pdf(store, record, out)
    out.flush()
    return ExportResult(fmt, n, ctx.partial)
