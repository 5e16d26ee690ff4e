"""The Dash app: a thin shell around the pages in ``dashboard/pages``.

The shell holds what every page shares: the header (bay, clock, links, alarm sound, the
nurse's name, the "not a medical device" notice), the alarm pop-ups and the one-second tick.

Live updates, per browser tab, are pushed (``dashboard.push``): one Server-Sent Events
stream per tab carries what changed (tile strings and classes, header, sound, the pop-ups'
signature) and ``assets/push.js`` writes it into the page's elements, the header and the
alarm sound (``assets/audio.js``); no Dash callback runs for it. Only when the pop-ups'
signature changes does the page ask Dash (``popup-sig`` -> ``render_popups``) to render
them, with their action buttons (none on the read-only wall display). The overview's
sparklines (inline SVG) refresh every 5 s and the chair page's trend is extended every
5 s, by Dash callbacks of their own.

Operator actions (acknowledge, pause audio, session steps, limits) call the core's methods
with the nurse's name, then ``LiveBay.invalidate()`` so the next view shows their effect.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import has_request_context
from flask_login import current_user

from dashboard.api import install_api
from dashboard.auth import actor, current_name, install_auth, may, wall_view
from dashboard.components import NEED_NAME, popups
from dashboard.figures import bay_view, fmt_duration
from dashboard.live import LiveBay
from dashboard.pages import LIVE_KEY, current_live
from dashboard.push import install_push
from dashboard.security import install_security
from dashboard.site_push import SITE_PAGE, install_site_push
from monitor.core import MonitorError

__all__ = ["NOTICE", "TAKEOVER", "create_app", "toast"]

HERE = Path(__file__).parent
NOTICE = "Not a medical device — the bedside monitors' alarms stay primary"

#: Shown when the screen's push stream comes back from the other server of an HA pair
#: (assets/push.js): the standby took over, so the nurse checks that the bay is as it was.
TAKEOVER = "Reconnected to the standby server (now leading): check the bay · click to hide"


def create_app(live: LiveBay, *, title: str = "Chairside") -> dash.Dash:
    """The dashboard and the HTTP API on one Flask server (``app.server``, a WSGI app).
    With a site source (``LiveBay(..., site=...)``) it also serves the read-only site view
    (``/site``, a "Site" link in the header; ``dashboard.site_push``).

    The pages' callbacks are registered with ``dash.callback``, which Dash hands to the
    first app that serves a request: build one app at a time and serve it (tests do)."""
    app = dash.Dash(
        __name__, use_pages=True, pages_folder=str(HERE / "pages"), assets_folder=str(HERE / "assets"),
        suppress_callback_exceptions=True, title=title, update_title=None,
    )
    app.server.config[LIVE_KEY] = live
    install_security(app)
    install_auth(app.server, live)
    install_api(app.server, live)
    install_push(app.server, live)
    install_site_push(app.server, live)  # /site and its stream, when the bay has a site source
    app.layout = (lambda: _shell(live, title)) if live.config.auth.enabled else _shell(live, title)
    _register_callbacks(app)
    return app


def _shell(live: LiveBay, title: str) -> html.Div:
    bay = live.config.bay.name
    header = html.Header([
        html.Div([
            html.Span(title, className="brand"),
            html.Span(bay, className="bay-name"),
            html.Span("", id="clock", className="clock"),
        ], className="hdr-left"),
        html.Nav([
            dcc.Link("Bay", href="/", className="nav-link"),
            dcc.Link(["Alarms ", html.Span("0", id="nav-alarm-count", className="nav-count")],
                     href="/alarms", className="nav-link"),
            *([dcc.Link("Site", href=SITE_PAGE, className="nav-link", id="nav-site")]
              if live.site is not None and not wall_view() else []),
            *([dcc.Link("Users", href="/users", className="nav-link", id="nav-users")]
              if live.config.auth.enabled and may("users") else []),
        ], className="hdr-nav"),
        html.Div([
            html.Button("ALARM SOUND OFF — click to enable", id="sound-enable", className="btn btn-sound"),
            html.Span("Sound not enabled", id="sound-state", className="sound-state"),
        ], className="hdr-sound"),
        _who(live),
        html.Div(NOTICE, className="notice"),
    ], className="hdr")
    return html.Div([
        dcc.Store(id="popup-sig"),  # the pop-ups' signature, set by push.js when they change
        dcc.Store(id="nurse-store", storage_type="local"),
        header,
        html.Div([], id="action-msg", className="action-msg"),
        html.Main(dash.page_container, className="page"),
        html.Div([], id="popups", className="popups"),
        html.Div("No connection to the Chairside server: the values on this screen are not updating",
                 className="disconnected-banner"),
        html.Div(TAKEOVER, className="takeover-banner", title="Click to hide"),
        html.Div("", id="bay-alarm", className="bay-alarm"),
    ], className="shell")


def _who(live: LiveBay) -> html.Div:
    """The nurse's name: typed in (authentication off), or the logged-in user's, shown
    read-only with a link to log out (built per page load)."""
    if not live.config.auth.enabled:
        return html.Div([
            html.Label("Nurse", htmlFor="nurse-input", className="nurse-label"),
            dcc.Input(id="nurse-input", type="text", placeholder="your name", maxLength=64,
                      className="nurse-input missing", autoComplete="off"),
        ], className="hdr-nurse")
    name = current_name() if has_request_context() else None
    if name is None:  # the read-only wall display
        return html.Div([
            dcc.Input(id="nurse-input", type="hidden", value=""),
            html.Span("Wall display (read-only)", className="nurse-label"),
            html.Span("Read-only: log in to act", className="readonly-hint"),
            html.A("Log in", href="/login", className="nav-link"),
        ], className="hdr-nurse wall-display")
    role = current_user.user.role
    return html.Div([
        dcc.Input(id="nurse-input", type="hidden", value=name),  # who acts: the callbacks' State
        html.Span("Signed in", className="nurse-label"),
        html.Span(f"{name} ({role})", id="user-badge", className="user-badge", title=f"{name}, role {role}"),
        html.A("Log out", href="/logout", className="nav-link", id="logout-link"),
    ], className="hdr-nurse")


def toast(text: str) -> html.Span:
    """A message that fades after a few seconds (a new key restarts the fade)."""
    return html.Span(text, className="toast", key=uuid.uuid4().hex)


def _popups(live: LiveBay) -> Any:
    """The pop-ups as the bay is now (with action buttons, except on the wall display)."""
    snap = live.snapshot(max_age=0)
    data, pops = bay_view(snap.chairs, snap.time, live.config.bay.name)
    return popups(pops, data["popups_more"], live.config.alarms.audio_pause_s, actions=not wall_view())


def _register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output("popups", "children"), Input("popup-sig", "data"))
    def render_popups(_sig: str | None) -> Any:
        return _popups(current_live())

    @app.callback(
        Output("action-msg", "children"), Output("action-msg", "className"),
        Output("popups", "children", allow_duplicate=True),
        Input({"type": "ack", "alarm": ALL, "where": ALL}, "n_clicks"),
        Input({"type": "ackchair", "chair": ALL, "where": ALL}, "n_clicks"),
        Input({"type": "pause", "chair": ALL, "where": ALL}, "n_clicks"),
        State("nurse-input", "value"),
        prevent_initial_call=True,
    )
    def alarm_action(_acks: list[int], _chair_acks: list[int], _pauses: list[int],
                     nurse: str | None) -> tuple[Any, ...]:
        target = ctx.triggered_id
        if target is None or not any(t["value"] for t in ctx.triggered):
            raise PreventUpdate  # buttons appearing, not a click
        user = actor("pause" if target["type"] == "pause" else "acknowledge", nurse)
        if not user:
            return (toast(NEED_NAME), "action-msg error", no_update)
        live = current_live()
        monitor = live.monitor
        try:
            if target["type"] == "ack":
                alarm = monitor.acknowledge(int(target["alarm"]), user)
                text = f"Acknowledged by {user}: {alarm.priority.marker} {alarm.message}"
            elif target["type"] == "ackchair":  # the pop-up: one click for the whole chair
                chair = target["chair"]
                done = monitor.acknowledge_chair(chair, user)
                label = live.config.chair(chair).title
                text = f"Acknowledged by {user}: {len(done)} alarm{'s' if len(done) != 1 else ''} on {label}"
            else:
                chair = target["chair"]
                monitor.pause_audio(chair, user)
                label = live.config.chair(chair).title
                pause = fmt_duration(live.config.alarms.audio_pause_s)
                text = f"Audio paused for {pause} on {label} by {user}"
        except (MonitorError, KeyError) as exc:
            return (toast(f"Not done: {exc}"), "action-msg error", no_update)
        live.invalidate()  # the tiles follow over the push stream
        return (toast(text), "action-msg ok", _popups(live))

    app.clientside_callback(
        ClientsideFunction(namespace="chairside", function_name="nurse"),
        Output("nurse-input", "value"), Output("nurse-store", "data"),
        Output("nurse-input", "className"),
        Input("nurse-input", "value"), Input("nurse-store", "modified_timestamp"),
        State("nurse-store", "data"),
    )
