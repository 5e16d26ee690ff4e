"""The root of the simulators' errors, :class:`SimulatorError` (its tree is drawn in
:mod:`simulators`)."""

from __future__ import annotations

from monitor.errors import ChairsideError

__all__ = ["SimulatorError"]


class SimulatorError(ChairsideError):
    """Base of every exception the simulators define."""
