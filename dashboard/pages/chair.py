"""One chair (``/chair/<chair_id>``): its live tile, the session's full trends with limits,
baseline and infusion events, the session workflow, the session's limits and the chair's
alarm history.

The tile is live through the shell's tick; the trend figure comes with the page and is then
patched every 5 s with the new readings (``chair-slow``; see "the trend figure" below), the
alarm history rebuilt at the same pace; the session and limit forms only after an action, so
a nurse typing into them is never interrupted. On the read-only wall display the page shows
the session and the limits without any action (no buttons, no export links).
The limits form is offered only to a role that may change limits (read-only with a note
otherwise). A change the core refuses is shown in the form, whose fields go back to the
limits in force; a change that widens a limit past the profile's default opens a dialog
(in ``limits-confirm``, the change kept in ``limits-pending``) listing the changes in
clinical words, saved only on Confirm.

The page's views and action logic live beside it: :mod:`.chair_session` (the session panel,
baseline block and dialogs), :mod:`.chair_limits` (the limits form and saving a change),
:mod:`.chair_actions` (what a session action returns); the callbacks are all here, so
that Dash registers them whenever it loads the page.
"""

from __future__ import annotations

import uuid
from typing import Any

import dash
from dash import (
    ALL,
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
    html,
    no_update,
)
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import Forbidden

from dashboard.auth import actor, wall_view
from dashboard.components import NEED_NAME, alarm_history_table, tile
from dashboard.figures import (
    alarm_event_row,
    limit_changes,
    merge_overrides,
    tile_view,
)
from dashboard.live import LiveBay
from dashboard.pages import current_live
from dashboard.pages.chair_actions import ACTION_OUTPUTS, action_error, after_action, session_action
from dashboard.pages.chair_limits import (
    LIMITS_OUTPUTS,
    limits_panel,
    limits_refused,
    open_session_id,
    save_limits_change,
)
from dashboard.pages.chair_session import BASELINE_FIELDS, MANUAL_FIELDS, baseline_block, session_panel
from dashboard.trend_data import (
    RANGES,
    build_trends,
    parse_view,
    patch_trends,
    state_view,
    valid_state,
)
from monitor.alarm_rules import RuleError
from monitor.core import (
    MonitorError,
)

dash.register_page(__name__, path_template="/chair/<chair_id>", name="Chair")



def layout(chair_id: str | None = None, **_: Any) -> html.Div:
    live = current_live()
    snap = live.snapshot()
    status = snap.chair(chair_id or "")
    if status is None:
        return html.Div([html.H2(f"No chair {chair_id!r} in this bay"),
                         dcc.Link("Back to the bay", href="/")], className="chair-page missing")
    gen = uuid.uuid4().hex[:8]
    read_only = wall_view()
    session = session_panel(live, status.chair, read_only=read_only)
    figure, trend_state = build_trends(live, status.chair)
    return html.Div([
        dcc.Store(id="chair-id", data=status.chair),
        dcc.Interval(id="chair-slow", interval=5000),
        html.Div([
            tile(status.chair, status.label, tile_view(status, snap.time), gen, sparklines=False,
                 link=False),
            trends_panel(figure, trend_state),
        ], className="chair-main"),
        html.Div([
            html.Section([html.Div(session, id="session-panel"),
                          html.Div(baseline_block(live, status.chair, read_only=read_only),
                                   id="baseline-block"),
                          html.Div("", id="session-msg", className="form-msg")], className="card"),
            html.Section([html.H3("Alarm history"), html.Div(id="chair-alarms")],
                         className="card card-alarms"),
            html.Section([html.Div(limits_panel(live, status.chair, read_only=read_only), id="limits-panel"),
                          html.Div("", id="limits-msg", className="form-msg")], className="card"),
        ], className="chair-side"),
        html.Div([], id="confirm-modal"),
        html.Div([], id="limits-confirm"),  # the widening dialog, while it asks
        dcc.Store(id="limits-pending"),
    ], className="chair-page")


def trends_panel(figure: dict[str, Any], state: dict[str, Any]) -> html.Div:
    """The trend figure (built with the page), its range choice and its stores. Until plotly
    has drawn the figure, a skeleton shows in its place (under the plot, hidden once drawn)."""
    return html.Div([
        html.Div([
            html.Span("Trends", className="trend-title"),
            dcc.RadioItems(id="chair-range", options=[{"label": label, "value": value}
                                                      for value, label in RANGES],
                           value=state["span"], inline=True, className="trend-range"),
        ], className="trend-bar"),
        html.Div([
            html.Div([html.Span("Loading trends…", className="trend-loading")],
                     className="trend-skeleton", **{"aria-hidden": "true"}),
            dcc.Graph(id="chair-trends", figure=figure, className="trend-graph",
                      config={"displayModeBar": False, "responsive": True}),
        ], className="trend-plot"),
        dcc.Store(id="chair-trend-state", data=state),
        dcc.Store(id="chair-trend-view"),  # the nurse's zoom (assets/chair_trends.js)
        dcc.Store(id="chair-trend-rebuild"),  # set by actions: build the figure again
        dcc.Store(id="chair-trend-shifted"),  # (the x-window shift's output; unused)
    ], className="chair-trends")





def chair_alarm_rows(live: LiveBay, chair: str, limit: int = 60) -> tuple[Any, float | None]:
    """The alarm history table, and when its newest alarm was raised."""
    events = live.monitor.alarm_events(chair=chair, limit=limit)
    newest = max((e.time for e in events if e.old_state is None), default=None)
    return alarm_history_table([alarm_event_row(e) for e in reversed(events)], chair_column=False), newest


@callback(
    Output("chair-trends", "figure"), Output("chair-trends", "extendData"),
    Output("chair-trend-state", "data"), Output("chair-alarms", "children"),
    Output("baseline-block", "children"),
    Input("chair-slow", "n_intervals"), Input("chair-range", "value"), Input("chair-trend-view", "data"),
    Input("chair-trend-rebuild", "data"),
    State("chair-id", "data"), State("chair-trend-state", "data"),
)
def refresh_trends(_n: int | None, span: str | None, view: Any, rebuild_token: Any, chair: str,
                   state: Any) -> tuple[Any, ...]:
    """Every 5 s: the alarm history, the baseline, and the trend patched with the new
    readings; on a range, zoom or action: the trend built again."""
    live = current_live()
    rows, newest_alarm = chair_alarm_rows(live, chair)
    baseline = baseline_block(live, chair)
    triggered = set(ctx.triggered_prop_ids.values())
    span = span if span in dict(RANGES) else "session"
    if triggered - {"chair-slow"} or not valid_state(state, chair):
        if "chair-trend-view" in triggered and "chair-range" not in triggered:
            zoom = parse_view(view, live.monitor.clock.now())
        else:
            zoom = None if "chair-range" in triggered or not valid_state(state, chair) else \
                state_view(state)
        figure, new_state = build_trends(live, chair, span, zoom, newest_alarm)
        return figure, no_update, new_state, rows, baseline
    patch = patch_trends(live, chair, state, newest_alarm)
    if patch is None:
        figure, new_state = build_trends(live, chair, state["span"], state_view(state), newest_alarm)
        return figure, no_update, new_state, rows, baseline
    extend, new_state = patch
    return no_update, no_update if extend is None else extend, new_state, rows, baseline


clientside_callback(ClientsideFunction(namespace="chairTrends", function_name="view"),
                    Output("chair-trend-view", "data"), Input("chair-trends", "relayoutData"),
                    State("chair-trend-view", "data"), prevent_initial_call=True)
clientside_callback(ClientsideFunction(namespace="chairTrends", function_name="shift"),
                    Output("chair-trend-shifted", "data"), Input("chair-trend-state", "data"))



@callback(
    Output("start-drug", "value"), Output("start-dose", "value"), Output("start-note", "children"),
    Input("start-protocol", "value"), prevent_initial_call=True,
)
def prefill(protocol: str | None) -> tuple[Any, Any, Any]:
    preset = current_live().config.presets().get(protocol or "")
    if preset is None:
        return "", "", ""
    note = ("Shipped example: review before clinical use. " if preset.example else "") + preset.note
    return preset.drug, preset.dose, note


@callback(
    *ACTION_OUTPUTS,
    Input("start-btn", "n_clicks"),
    State("chair-id", "data"), State("nurse-input", "value"), State("start-patient", "value"),
    State("start-protocol", "value"), State("start-drug", "value"), State("start-dose", "value"),
    prevent_initial_call=True,
)
def start_session(clicks: int, chair: str, nurse: str | None, patient: str | None,
                  protocol: str | None, drug: str | None, dose: str | None) -> tuple[Any, ...]:
    if not clicks:
        raise PreventUpdate
    user = actor("sessions", nurse)
    if not user:
        return action_error(NEED_NAME)
    if protocol is None:
        return action_error("Choose a protocol preset (or No protocol).")
    live = current_live()
    try:
        s = live.monitor.start_session(chair, patient or "", user, protocol=protocol,
                                       drug=(drug or "").strip() or None, dose=(dose or "").strip() or None)
    except MonitorError as exc:
        return action_error(f"Not started: {exc}")
    return after_action(live, chair, f"Session started for {s.patient} by {user}")


@callback(
    *ACTION_OUTPUTS,
    Input({"type": "step", "kind": ALL}, "n_clicks"), Input("baseline-btn", "n_clicks"),
    State("chair-id", "data"), State("nurse-input", "value"), State("sess-text", "value"),
    *[State(f"base-{key}", "value") for key, _ in BASELINE_FIELDS],
    prevent_initial_call=True,
)
def session_step(_steps: list[int], _base: int, chair: str, nurse: str | None, text: str | None,
                 *baseline: float | None) -> tuple[Any, ...]:
    return session_action(ctx.triggered_id, chair, nurse, text, baseline)


@callback(
    *ACTION_OUTPUTS,
    Input({"type": "confirm", "action": ALL}, "n_clicks"),
    State("chair-id", "data"), State("nurse-input", "value"),
    prevent_initial_call=True,
)
def confirmed(_clicks: list[int], chair: str, nurse: str | None) -> tuple[Any, ...]:
    """A confirmation dialog's button, or "Confirm baseline" on the session panel."""
    target = ctx.triggered_id
    if target is None or not any(t["value"] for t in ctx.triggered):
        raise PreventUpdate
    action = target["action"]
    if action == "cancel":
        return (no_update, "", "form-msg", no_update, no_update, [], no_update)
    return session_action(action, chair, nurse, None, ())


@callback(
    *ACTION_OUTPUTS,
    Input("manual-btn", "n_clicks"),
    State("chair-id", "data"), State("nurse-input", "value"),
    *[State(f"manual-{key}", "value") for key, _ in MANUAL_FIELDS],
    prevent_initial_call=True,
)
def manual_nibp(clicks: int, chair: str, nurse: str | None, sys_: float | None, dia: float | None,
                mean: float | None) -> tuple[Any, ...]:
    """A nurse's NIBP reading: taken in like a device's, marked manual, audited."""
    if not clicks:
        raise PreventUpdate
    user = actor("sessions", nurse)
    if not user:
        return action_error(NEED_NAME)
    live = current_live()
    status = live.snapshot().chair(chair)
    session = status.session if status else None
    if session is None:
        return action_error("This chair has no open session.")
    if sys_ is None or dia is None:
        return action_error("Enter systolic and diastolic (MAP is optional).")
    try:
        readings = live.monitor.enter_manual_nibp(session.id, sys_, dia, mean, user)
    except (MonitorError, ValueError) as exc:
        return action_error(f"Not recorded: {exc}")
    s, d, m = (r.value for r in readings)
    return after_action(live, chair, f"Manual BP {s:g}/{d:g} (MAP {m:g}) entered by {user}")


@callback(
    *LIMITS_OUTPUTS,
    Input("limits-save", "n_clicks"),
    State({"type": "lim", "rule": ALL, "field": ALL}, "value"),
    State("chair-id", "data"), State("nurse-input", "value"),
    prevent_initial_call=True,
)
def save_limits(clicks: int, _values: list[Any], chair: str, nurse: str | None) -> tuple[Any, ...]:
    if not clicks:
        raise PreventUpdate
    live = current_live()
    try:
        user = actor("limits", nurse)
    except Forbidden as exc:  # (a screen that should not have offered it): said in the form
        return limits_refused(live, chair, f"Not saved: {exc.description}")
    if not user:
        return limits_refused(live, chair, NEED_NAME)
    session_id = open_session_id(live, chair)
    if session_id is None:
        return limits_refused(live, chair, "This chair has no open session.")
    values = {(s["id"]["rule"], s["id"]["field"]): s.get("value") for s in ctx.states_list[0]}
    try:
        changed = limit_changes(live.monitor.rules(chair), values)
        if not changed:
            return (no_update, "No limit changed.", "form-msg", no_update, [], None)
        overrides = merge_overrides(live.monitor.session(session_id).limit_overrides, changed)
    except RuleError as exc:
        return limits_refused(live, chair, f"Not saved: {exc.clinical}")
    except ValueError as exc:
        return limits_refused(live, chair, f"Not saved: {exc}")
    return save_limits_change(live, chair, user, session_id, overrides, confirm=False)


@callback(
    *LIMITS_OUTPUTS,
    Input("limits-confirm-ok", "n_clicks"), Input("limits-confirm-cancel", "n_clicks"),
    State("limits-pending", "data"), State("chair-id", "data"), State("nurse-input", "value"),
    prevent_initial_call=True,
)
def confirm_limits(_ok: int, _cancel: int, pending: dict[str, Any] | None, chair: str,
                   nurse: str | None) -> tuple[Any, ...]:
    """The dialog's answer: Confirm saves the pending change (the core checks it again),
    Cancel drops it."""
    if not any(t["value"] for t in ctx.triggered):
        raise PreventUpdate
    live = current_live()
    if ctx.triggered_id == "limits-confirm-cancel" or not pending:
        return limits_refused(live, chair, "Not saved: the change was cancelled.", "form-msg")
    try:
        user = actor("limits", nurse)
    except Forbidden as exc:
        return limits_refused(live, chair, f"Not saved: {exc.description}")
    if not user:
        return limits_refused(live, chair, NEED_NAME)
    if pending.get("session") != open_session_id(live, chair):
        return limits_refused(live, chair, "Not saved: the session has changed meanwhile.")
    return save_limits_change(live, chair, user, pending["session"], list(pending.get("rules") or []),
                        confirm=True)
