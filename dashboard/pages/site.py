"""The site view (``/site``): every bay of the unit as a card, for the charge nurse.

Each card shows the bay's chairs in use, its open clinical alarms by priority, its technical
problems and the alarm that has waited longest for a nurse, coloured and flashing as the bay's
tiles are, and links to the bay's own screen. Strictly read-only: no buttons, no actions
(those are the bay's, on its own screen). The cards' strings and classes are pushed
(``dashboard.site_push``, written by ``assets/site.js``); this page only lays the cards out.
Served only when the bay was given a site source; any logged-in role, never the wall display.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from dashboard.auth import wall_view
from dashboard.pages import current_live
from dashboard.site_view import site_view
from monitor.records import Priority
from monitor.site import BaySummary

dash.register_page(__name__, path="/site", name="Site")


def _field(view: dict[str, str], key: str, tag: Any = html.Span) -> Any:
    return tag(view.get(key, ""), className=view.get(f"{key}_cls", ""), **{"data-sf": key})


def site_card(s: BaySummary, view: dict[str, str]) -> html.Article:
    """One bay's card, filled with ``view`` (``site_view``'s answer); push updates it."""
    b = s.ref.id
    return html.Article([
        html.Div([
            html.A(s.ref.name, href=s.ref.url, className="site-bay-link",
                   title=f"{s.ref.name}: its own screen"),
            _field(view, f"{b}|chairs", html.Span),
        ], className="site-card-head"),
        _field(view, f"{b}|status", html.Div),
        html.Div([_field(view, f"{b}|{p.label}") for p in sorted(Priority, reverse=True)],
                 className="site-counts", title="open clinical alarms: high, medium, low"),
        _field(view, f"{b}|tech", html.Div),
        _field(view, f"{b}|oldest", html.Div),
    ], className=view.get(f"{b}|card_cls", "site-card"), **{"data-sf": f"{b}|card", "data-bay": b})


def layout(**_: Any) -> html.Div:
    live = current_live()
    if live.site is None:
        return html.Div("This bay shows no site view.", className="site-page none")
    if wall_view():  # the gate keeps the wall display out; its page callback too
        return html.Div([html.P("The site view needs a login."), html.A("Log in", href="/login?next=/site")],
                        className="site-page none")
    summaries = live.site.summaries()
    view = site_view(summaries, live.monitor.clock.now())
    return html.Div([
        html.Div([html.H2("Site: every bay"), _field(view, "as_of")], className="site-head"),
        html.Div([site_card(s, view) for s in summaries], id="site-grid", className="site-grid"),
    ], className="site-page")
