"""The export route of the HTTP API (:mod:`dashboard.api`): a session's data as CSV
(streamed), ZIP, FHIR, HL7 or PDF, each download audited."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Any

from flask import Blueprint, Response, request

from dashboard.api_support import ApiError
from dashboard.auth import require
from dashboard.live import LiveBay
from monitor.exports import FORMATS, export_filename, export_session
from monitor.exports.csv_export import CSV_COLUMNS, csv_chunks, csv_rows

__all__ = ["add_export_route"]


def add_export_route(api: Blueprint, live: LiveBay) -> None:
    monitor = live.monitor

    @api.get("/api/v1/sessions/<session_id>/export")
    def export(session_id: str) -> Any:
        user = require("export")
        fmt = request.args.get("format", "csv")
        spec = FORMATS.get(fmt)
        if spec is None:
            raise ApiError(400, f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        s = monitor.session(session_id)
        store = monitor.history()  # 409 without a store (NoHistory)
        now = monitor.clock.now()
        if user is not None:  # patient data leaving the system: recorded
            monitor.audit(user, "export", s.chair, s.id, {"format": fmt})
        headers = {"Content-Disposition": f'attachment; filename="{export_filename(s, fmt)}"',
                   "Cache-Control": "no-store"}
        if fmt == "csv":  # streamed row batch by row batch as the store yields them
            end = s.ended_at if s.ended_at is not None else now
            return Response(csv_chunks(csv_rows(store, s, end), CSV_COLUMNS, neutralised=True),
                            mimetype=spec.mimetype, headers=headers)
        # the other formats are written whole first (to memory, or to a temporary file past
        # 8 MiB), so that a failure is an error status rather than a truncated download
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 (closed by _file_chunks)
        try:
            export_session(store, s, fmt, spool, now, config=live.config)  # type: ignore[arg-type]
            headers["Content-Length"] = str(spool.tell())
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return Response(_file_chunks(spool), mimetype=spec.mimetype, headers=headers)


def _file_chunks(fh: IO[bytes], size: int = 1 << 18) -> Iterator[bytes]:
    try:
        while chunk := fh.read(size):
            yield chunk
    finally:
        fh.close()
