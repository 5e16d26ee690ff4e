"""The readings CSV, kept importable here: the exports now live in :mod:`monitor.exports`
(``csv``, ``zip``, ``fhir``, ``hl7``, ``pdf``), this module re-exports the CSV helpers."""

from __future__ import annotations

from monitor.exports.csv_export import CSV_COLUMNS, csv_rows, write_csv

__all__ = ["CSV_COLUMNS", "csv_rows", "write_csv"]
