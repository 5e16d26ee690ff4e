"""The root of the composition root's errors, :class:`StationError` (its tree is drawn in
:mod:`station`)."""

from __future__ import annotations

from monitor.errors import ChairsideError

__all__ = ["CliError", "StationError"]


class StationError(ChairsideError):
    """Base of every exception the station (the CLI, the service, the demo) defines."""


class CliError(StationError):
    """Bad input from the user to a ``chairside`` command: printed without a traceback, exit
    status 2 (re-exported by :mod:`station.cli`)."""
