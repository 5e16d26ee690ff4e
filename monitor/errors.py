"""The one base every error Chairside defines derives from: :class:`ChairsideError`.

Dependency-free on purpose (every package imports it, it imports nothing), so the wire
formats, the devices and the dashboard can derive their roots from it without importing the
core. Each package draws its own tree in its docstring (:mod:`monitor`, :mod:`devices`,
:mod:`dashboard`, :mod:`simulators`); ``except ChairsideError`` catches anything the project
raised on purpose, while errors that also are a ``ValueError``, ``KeyError`` or ``OSError``
keep that base too, so existing handlers behave as before.
"""

from __future__ import annotations

__all__ = ["ChairsideError", "CoreError"]


class ChairsideError(Exception):
    """Base of every exception defined in Chairside."""


class CoreError(ChairsideError):
    """Root of the core's (``monitor/``) errors; its tree is drawn in :mod:`monitor`."""
