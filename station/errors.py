"""The root of the composition root's errors, :class:`StationError` (its tree is drawn in
:mod:`station`)."""

from __future__ import annotations

from monitor.errors import ChairsideError

__all__ = ["StationError"]


class StationError(ChairsideError):
    """Base of every exception the station (the CLI, the service, the demo) defines."""
