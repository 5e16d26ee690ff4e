"""The root of the dashboard's errors, :class:`DashboardError` (its tree is drawn in
:mod:`dashboard`)."""

from __future__ import annotations

from monitor.errors import ChairsideError

__all__ = ["DashboardError"]


class DashboardError(ChairsideError):
    """Base of every exception the dashboard (pages, API, login, security) defines."""
