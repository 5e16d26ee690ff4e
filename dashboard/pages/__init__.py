"""The dashboard's pages, one module each, registered with ``dash.register_page`` when
``dashboard.app.create_app`` builds the app (Dash imports them from this folder):

    overview.py   /                    the bay: one tile per chair (the wall screen)
    chair.py      /chair/<chair_id>    one chair: trends, session workflow, limits, alarms
    alarms.py     /alarms              open alarms and the alarm history
    users.py      /users               accounts (charge, admin; 403 for the other roles)
    site.py       /site                every bay of the unit, read-only (with a site source only)

The chair page's views and action logic are beside it (not pages: Dash loads only the modules
that register one): chair_session.py (session panel, baseline, dialogs), chair_limits.py
(the limits form and saving a change), chair_actions.py (what a session action returns).

Callbacks reach the running bay through :func:`current_live` (the ``LiveBay`` that
``create_app`` put in the Flask config), never through module state.
"""

from __future__ import annotations

from flask import current_app

from dashboard.live import LiveBay

__all__ = ["LIVE_KEY", "current_live"]

LIVE_KEY = "CHAIRSIDE_LIVE"


def current_live() -> LiveBay:
    """The bay of the app serving the current request (callbacks and page layouts)."""
    live: LiveBay = current_app.config[LIVE_KEY]
    return live
