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

from dashboard.auth import actor, may, wall_view
from dashboard.components import NEED_NAME, alarm_history_table, confirm_dialog, tile
from dashboard.figures import (
    alarm_event_row,
    fmt_clock,
    limit_changes,
    merge_overrides,
    session_phase,
    tile_view,
)
from dashboard.live import LiveBay
from dashboard.pages import current_live
from dashboard.trend_data import (
    RANGES,
    build_trends,
    parse_view,
    patch_trends,
    state_view,
    valid_state,
)
from monitor.alarm_rules import LimitRule, RuleError, compare_rules
from monitor.config import ProtocolPreset
from monitor.core import (
    BaselineProposal,
    ConfirmationNeeded,
    ConfirmationRequired,
    InvalidLimits,
    MonitorError,
)
from monitor.parameters import PARAMETERS, by_key
from monitor.records import Session, SessionEventKind
from monitor.records import SessionState as S

dash.register_page(__name__, path_template="/chair/<chair_id>", name="Chair")

K = SessionEventKind
OPEN = frozenset(s for s in S if s.is_open)

#: Buttons of the session workflow: (step, label, states it is offered in). The core
#: decides; this only greys out what it would refuse.
STEPS: tuple[tuple[SessionEventKind, str, frozenset[S]], ...] = (
    (K.INFUSION_STARTED, "Start infusion", frozenset({S.MONITORING})),
    (K.INFUSION_PAUSED, "Pause infusion", frozenset({S.INFUSING})),
    (K.INFUSION_RESUMED, "Resume infusion", frozenset({S.INFUSION_PAUSED})),
    (K.INFUSION_STOPPED, "Stop infusion", frozenset({S.INFUSING, S.INFUSION_PAUSED})),
    (K.OBSERVATION_STARTED, "Start observation", frozenset({S.MONITORING, S.INFUSING, S.INFUSION_PAUSED})),
    (K.SESSION_ENDED, "End session", OPEN),
)
TEXT_STEPS: tuple[tuple[SessionEventKind, str, frozenset[S]], ...] = (
    (K.RATE_CHANGED, "Rate change", frozenset({S.INFUSING, S.INFUSION_PAUSED})),
    (K.BOLUS, "Bolus", frozenset({S.MONITORING, S.INFUSING, S.INFUSION_PAUSED})),
    (K.NOTE, "Note", OPEN),
)
BASELINE_FIELDS = (("hr", "HR"), ("spo2", "SpO2"), ("nibp_sys", "Sys"), ("nibp_dia", "Dia"))
MANUAL_FIELDS = (("sys", "Sys"), ("dia", "Dia"), ("map", "MAP"))
LIMITS_READ_ONLY = "Alarm limits can be changed by a charge nurse or an administrator."
_ORDER = {p.key: i for i, p in enumerate(PARAMETERS)}


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


# --- the session workflow ----------------------------------------------------------------


def session_panel(live: LiveBay, chair: str, ended: Session | None = None, *,
                  read_only: bool = False) -> list[Any]:
    """The start form (with the last session's export), or the open session's workflow.
    ``ended``: a session just ended (the store may not have it yet). ``read_only`` (the wall
    display): the session's facts only."""
    status = live.snapshot().chair(chair)
    session = status.session if status else None
    if session is None:
        if read_only:
            return [html.H3("Session"), html.Div("No open session on this chair.", className="hint")]
        return start_form(live.config.presets(), ended or _last_session(live, chair))
    return session_view(session, live.monitor.clock.now(), live.config.presets(), read_only=read_only)


def _last_session(live: LiveBay, chair: str) -> Session | None:
    store = live.monitor.store
    found = store.sessions(chair, limit=1) if store is not None else []
    return found[0] if found else None


EXPORTS = (("csv", "Export CSV"), ("pdf", "PDF report"), ("zip", "Zip (all CSVs)"),
           ("fhir", "FHIR"), ("hl7", "HL7"))


def _export_link(session: Session) -> html.Span:
    """Download links for every export format (``monitor.exports``)."""
    return html.Span([
        html.A(label, href=f"/api/v1/sessions/{session.id}/export?format={fmt}",
               className="btn btn-export", id="export-link" if fmt == "csv" else f"export-{fmt}",
               download="")
        for fmt, label in EXPORTS], className="export-links")


def start_form(presets: dict[str, ProtocolPreset], last: Session | None) -> list[Any]:
    options = [{"label": p.label, "value": key} for key, p in presets.items()]
    options.append({"label": "No protocol", "value": ""})
    children: list[Any] = [
        html.H3("Start a session"),
        html.Div([
            html.Label("Patient label or MRN", htmlFor="start-patient"),
            dcc.Input(id="start-patient", type="text", maxLength=64, className="input wide"),
        ], className="field"),
        html.Div([
            html.Label("Protocol", htmlFor="start-protocol"),
            dcc.Dropdown(id="start-protocol", options=options, value=None, clearable=False,
                         placeholder="choose a protocol preset", className="dropdown"),
            html.Div("", id="start-note", className="hint"),
        ], className="field"),
        html.Div([
            html.Div([html.Label("Drug", htmlFor="start-drug"),
                      dcc.Input(id="start-drug", type="text", className="input")], className="field"),
            html.Div([html.Label("Dose", htmlFor="start-dose"),
                      dcc.Input(id="start-dose", type="text", className="input")], className="field"),
        ], className="field-row"),
        html.Button("Start session", id="start-btn", className="btn btn-primary", n_clicks=0),
    ]
    if last is not None and last.ended_at is not None:
        children.append(html.Div([
            html.Span(f"Last session: {last.patient}, ended {fmt_clock(last.ended_at, False)} "
                      f"by {last.ended_by or '?'}", className="hint"),
            _export_link(last),
        ], className="last-session"))
    return children


def proposal_text(p: BaselineProposal) -> str:
    """``HR 72, SpO2 97, NIBP 121/79 (from 10:02-10:07, 2 readings in alarm left out)``"""
    v = p.values
    parts = [f"{_label(k)} {v[k]:g}" for k in ("hr", "pr", "spo2") if k in v]
    if "nibp_sys" in v:
        parts.append(f"NIBP {v['nibp_sys']:g}" + (f"/{v['nibp_dia']:g}" if "nibp_dia" in v else ""))
    left = [f"{n} {_label(k)} reading{'s' if n != 1 else ''}" for k, n in p.left_out.items()
            if k in ("hr", "pr", "spo2")]
    if p.left_out.get("nibp_sys"):
        n = p.left_out["nibp_sys"]
        left.append(f"{n} cuff reading{'s' if n != 1 else ''}")
    note = f"; in alarm, left out: {', '.join(left)}" if left else ""
    return (", ".join(parts) + f" (from {fmt_clock(p.since, False)}–{fmt_clock(p.until, False)}"
            f"{note})")


def baseline_block(live: LiveBay, chair: str, *, read_only: bool | None = None) -> Any:
    """The open session's baseline, or the pre-infusion proposal with its Confirm button
    (refreshed with the trends, as readings come in; no button on the wall display)."""
    if read_only is None:
        read_only = wall_view()
    status = live.snapshot().chair(chair)
    session = status.session if status else None
    if session is None:
        return []
    proposal = None if session.baseline else live.monitor.baseline_proposal(chair)
    if session.baseline:
        text = ", ".join(f"{_label(k)} {v:g}" for k, v in sorted(session.baseline.items()))
        return html.Div(f"Baseline: {text} ({session.baseline_source})", className="hint",
                        id="baseline-current")
    if proposal is None:
        return html.Div("No baseline yet: it is proposed from the readings before the infusion "
                        "(not those in alarm), or enter it below.", className="hint")
    return html.Div([
        html.Span("Proposed baseline: " + proposal_text(proposal), id="baseline-proposal"),
        None if read_only else html.Button("Confirm baseline", className="btn btn-step", n_clicks=0,
                                           id={"type": "confirm", "action": "baseline"}),
    ], className="baseline-proposal btn-row")


def session_view(session: Session, now: float, presets: dict[str, ProtocolPreset], *,
                 read_only: bool = False) -> list[Any]:
    def step_button(kind: SessionEventKind, label: str, allowed: frozenset[S]) -> html.Button:
        danger = " btn-danger" if kind is K.SESSION_ENDED else ""
        return html.Button(label, id={"type": "step", "kind": kind.value}, n_clicks=0,
                           className=f"btn btn-step{danger}", disabled=session.state not in allowed)

    facts = [
        ("Patient", session.patient),
        ("Protocol", presets[session.protocol].label if session.protocol in presets
         else session.protocol or "none"),
        ("Drug / dose", " · ".join(x for x in (session.drug, session.dose) if x) or "—"),
        ("Started", f"{fmt_clock(session.started_at, False)} by {session.started_by}"),
        ("Now", session_phase(session, now)),
        ("NIBP cycle", f"every {session.nibp_interval_s / 60:g} min" if session.nibp_interval_s else "—"),
    ]
    head = [
        html.H3(["Session ", html.Span(session.state.value.replace("_", " "),
                                       className=f"badge state-{session.state.value}")]),
        html.Dl([x for k, v in facts for x in (html.Dt(k), html.Dd(v))], className="facts"),
    ]
    if read_only:
        return head
    return [
        *head,
        html.Div([step_button(*s) for s in STEPS], className="btn-row"),
        html.Div([
            dcc.Input(id="sess-text", type="text", maxLength=500, className="input wide",
                      placeholder="rate (e.g. 250 mL/h), bolus or note text"),
            *[step_button(*s) for s in TEXT_STEPS],
        ], className="btn-row"),
        html.Div([
            html.Span("Baseline", className="inline-label"),
            *[html.Label([html.Span(label, className="field-label"),
                          dcc.Input(id=f"base-{key}", type="number", placeholder=label,
                                    className="input num", value=session.baseline.get(key))],
                         className="field-inline") for key, label in BASELINE_FIELDS],
            html.Button("Set baseline", id="baseline-btn", className="btn btn-step", n_clicks=0),
        ], className="btn-row"),
        html.Div([
            html.Span("Manual BP", className="inline-label",
                      title="a reading taken by hand (a manual cuff): marked manual in trends and exports"),
            *[html.Label([html.Span(label, className="field-label"),
                          dcc.Input(id=f"manual-{key}", type="number", placeholder=label,
                                    className="input num")], className="field-inline")
              for key, label in MANUAL_FIELDS],
            html.Button("Enter manual BP", id="manual-btn", className="btn btn-step", n_clicks=0),
        ], className="btn-row manual-nibp"),
        html.Div([_export_link(session)], className="btn-row"),
    ]


def _label(key: str) -> str:
    p = by_key(key)
    return p.label if p else key


# --- limits -----------------------------------------------------------------------------


def _sorted_rules(rules: tuple[LimitRule, ...]) -> list[LimitRule]:
    return sorted(rules, key=lambda r: (_ORDER.get(r.parameter, 99), r.relative, r.direction, -r.priority))


def limits_panel(live: LiveBay, chair: str, *, read_only: bool = False) -> list[Any]:
    """The limits in force, editable for an open session by a role that may change them;
    ``read_only`` (the wall display): the same table, not editable."""
    monitor = live.monitor
    status = live.snapshot().chair(chair)
    session = status.session if status else None
    allowed = may("limits") and not read_only
    locked = session is None or not allowed
    rules = _sorted_rules(monitor.engine.rules(chair))
    baseline = monitor.engine.baseline(chair)
    rows = []
    for r in rules:
        p = by_key(r.parameter)
        assert p is not None
        value = r.baseline_pct if r.relative else r.threshold
        unit = "% of baseline" if r.relative else p.unit
        effective = r.limit(baseline.get(r.parameter))
        note = "" if not r.relative else (f"= {effective:g}" if effective is not None else "no baseline yet")
        rows.append(html.Tr([
            html.Td(p.label + (" (no ECG)" if r.parameter == "pr" else "")),
            html.Td(("below" if r.direction == "low" else "above") + (" baseline by" if r.relative else "")),
            html.Td([dcc.Input(id={"type": "lim", "rule": r.id, "field": "value"}, type="number",
                               value=value, className="input num", disabled=locked),
                     html.Span(f" {unit} {note}", className="unit")]),
            html.Td(r.priority.label.upper(), className=f"prio prio-{r.priority.label}"),
            html.Td(dcc.Input(id={"type": "lim", "rule": r.id, "field": "delay"}, type="number",
                              value=r.delay_s, min=0, className="input num",
                              disabled=locked or not p.continuous)),
        ]))
    head = html.Tr([html.Th(x) for x in ("Parameter", "Alarm when", "Limit", "Priority", "Delay s")])
    if not allowed:  # what the role cannot do, the screen does not offer
        return [
            html.H3("Alarm limits" + (" for this session" if session else "")),
            html.Table([html.Thead(head), html.Tbody(rows)], className="table limits read-only"),
            html.Div("Read-only wall display: log in to change limits." if read_only
                     else LIMITS_READ_ONLY, className="hint limits-read-only"),
        ]
    return [
        html.H3("Alarm limits" + (" for this session" if session else "")),
        html.Table([html.Thead(head), html.Tbody(rows)], className="table limits"),
        html.Button("Save limits", id="limits-save", className="btn btn-primary", n_clicks=0,
                    disabled=session is None),
        html.Div("" if session else "Start a session to change its limits.", className="hint"),
    ]


def limits_confirm_dialog(changes: tuple[str, ...]) -> html.Div:
    """The modal that asks before limits are widened past the profile's defaults, listing
    the changes (styled as ``components.confirm_dialog``, the safe button first)."""
    return html.Div(html.Div([
        html.H3("Widen alarm limits?", id="limits-confirm-title"),
        html.P("These changes make alarms less sensitive than this chair's default limits:"),
        html.Ul([html.Li(text) for text in changes], id="limits-confirm-list", className="confirm-items"),
        html.Div([
            html.Button("Cancel", id="limits-confirm-cancel", className="btn btn-primary", n_clicks=0),
            html.Button("Confirm", id="limits-confirm-ok", className="btn btn-danger", n_clicks=0),
        ], className="btn-row"),
    ], className="modal", role="alertdialog",
        **{"aria-modal": "true", "aria-labelledby": "limits-confirm-title"}), className="modal-backdrop")


# --- the trend figure (built and patched by dashboard.trend_data) -------------------------


def chair_alarm_rows(live: LiveBay, chair: str, limit: int = 60) -> tuple[Any, float | None]:
    """The alarm history table, and when its newest alarm was raised."""
    store = live.monitor.store
    events = store.alarm_events(chair=chair, limit=limit) if store is not None else []
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
def refresh_trends(_n: int | None, span: str | None, view: Any, _rebuild: Any, chair: str,
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


def _rebuild() -> str:
    """A new value for ``chair-trend-rebuild``: the trend is built again (after an action)."""
    return uuid.uuid4().hex[:8]


clientside_callback(ClientsideFunction(namespace="chairTrends", function_name="view"),
                    Output("chair-trend-view", "data"), Input("chair-trends", "relayoutData"),
                    State("chair-trend-view", "data"), prevent_initial_call=True)
clientside_callback(ClientsideFunction(namespace="chairTrends", function_name="shift"),
                    Output("chair-trend-shifted", "data"), Input("chair-trend-state", "data"))


# --- actions ------------------------------------------------------------------------------


def _after(live: LiveBay, chair: str, text: str, ok: bool = True,
           ended: Session | None = None) -> tuple[Any, ...]:
    live.invalidate()
    return (session_panel(live, chair, ended), text, "form-msg " + ("ok" if ok else "error"),
            limits_panel(live, chair), _rebuild(), [], baseline_block(live, chair))


_ACTION_OUTPUTS = (
    Output("session-panel", "children", allow_duplicate=True),
    Output("session-msg", "children", allow_duplicate=True),
    Output("session-msg", "className", allow_duplicate=True),
    Output("limits-panel", "children", allow_duplicate=True),
    Output("chair-trend-rebuild", "data", allow_duplicate=True),
    Output("confirm-modal", "children", allow_duplicate=True),
    Output("baseline-block", "children", allow_duplicate=True),
)


def _error(text: str) -> tuple[Any, ...]:
    return (no_update, text, "form-msg error", no_update, no_update, [], no_update)


def _ask(dialog: html.Div) -> tuple[Any, ...]:
    return (no_update, no_update, no_update, no_update, no_update, dialog, no_update)


def end_dialog(exc: ConfirmationRequired) -> html.Div:
    return confirm_dialog(
        "End the session with open alarms?", str(exc), exc.items,
        [("cancel", "Keep monitoring", "btn-primary"),
         ("end-left", "Patient has left the chair: end session", "btn-danger")])


def start_dialog(proposal: BaselineProposal | None) -> html.Div:
    actions = [("cancel", "Cancel", "btn-primary")]
    items = []
    if proposal is not None:
        actions.append(("baseline-start", "Confirm this baseline and start infusion", "btn-step"))
        items = ["Proposed baseline: " + proposal_text(proposal)]
    actions.append(("start-anyway", "Start infusion without baseline", "btn-danger"))
    return confirm_dialog(
        "No baseline confirmed", "Alarms relative to the baseline (e.g. NIBP systolic 20 % "
        "below baseline) stay off until a baseline is confirmed or entered.", items, actions)


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
    *_ACTION_OUTPUTS,
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
        return _error(NEED_NAME)
    if protocol is None:
        return _error("Choose a protocol preset (or No protocol).")
    live = current_live()
    try:
        s = live.monitor.start_session(chair, patient or "", user, protocol=protocol,
                                       drug=(drug or "").strip() or None, dose=(dose or "").strip() or None)
    except MonitorError as exc:
        return _error(f"Not started: {exc}")
    return _after(live, chair, f"Session started for {s.patient} by {user}")


@callback(
    *_ACTION_OUTPUTS,
    Input({"type": "step", "kind": ALL}, "n_clicks"), Input("baseline-btn", "n_clicks"),
    State("chair-id", "data"), State("nurse-input", "value"), State("sess-text", "value"),
    *[State(f"base-{key}", "value") for key, _ in BASELINE_FIELDS],
    prevent_initial_call=True,
)
def session_step(_steps: list[int], _base: int, chair: str, nurse: str | None, text: str | None,
                 *baseline: float | None) -> tuple[Any, ...]:
    return _session_action(ctx.triggered_id, chair, nurse, text, baseline)


@callback(
    *_ACTION_OUTPUTS,
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
    return _session_action(action, chair, nurse, None, ())


def _session_action(target: Any, chair: str, nurse: str | None, text: str | None,
                    baseline: tuple[float | None, ...]) -> tuple[Any, ...]:
    """Carry out a session step (a button's id, or a confirmed dialog's action)."""
    if target is None or not any(t["value"] for t in ctx.triggered):
        raise PreventUpdate
    user = actor("sessions", nurse)
    if not user:
        return _error(NEED_NAME)
    live = current_live()
    monitor = live.monitor
    status = live.snapshot().chair(chair)
    session = status.session if status else None
    if session is None:
        return _error("This chair has no open session.")
    try:
        if target in ("baseline", "baseline-start"):
            new = monitor.confirm_baseline(session.id, user)
            done = "Baseline confirmed"
            if target == "baseline-start":
                new = monitor.session_step(session.id, K.INFUSION_STARTED, user)
                done += ", infusion started"
        elif target == "start-anyway":
            new = monitor.session_step(session.id, K.INFUSION_STARTED, user)
            done = "Infusion started without baseline"
        elif target == "end-left":
            new = monitor.end_session(session.id, user, patient_left=True)
            done = "Session ended, patient left"
        elif target == "baseline-btn":
            values = {key: float(v) for (key, _), v in zip(BASELINE_FIELDS, baseline, strict=True)
                      if v is not None}
            if not values:
                return _error("Enter at least one baseline value.")
            new = monitor.set_baseline(session.id, values, user)
            done = "Baseline set"
        else:
            kind = K(target["kind"])
            detail = (text or "").strip() if kind in (K.RATE_CHANGED, K.BOLUS, K.NOTE) else ""
            if kind is K.INFUSION_STARTED and not session.baseline:
                return _ask(start_dialog(monitor.baseline_proposal(chair)))
            new = monitor.session_step(session.id, kind, user, detail)
            done = kind.value.replace("_", " ").capitalize() + (f": {detail}" if detail else "")
    except ConfirmationRequired as exc:
        return _ask(end_dialog(exc))
    except (MonitorError, ValueError) as exc:
        return _error(f"Not recorded: {exc}")
    return _after(live, chair, f"{done} (by {user})", ended=None if new.state.is_open else new)


@callback(
    *_ACTION_OUTPUTS,
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
        return _error(NEED_NAME)
    live = current_live()
    status = live.snapshot().chair(chair)
    session = status.session if status else None
    if session is None:
        return _error("This chair has no open session.")
    if sys_ is None or dia is None:
        return _error("Enter systolic and diastolic (MAP is optional).")
    try:
        readings = live.monitor.enter_manual_nibp(session.id, sys_, dia, mean, user)
    except (MonitorError, ValueError) as exc:
        return _error(f"Not recorded: {exc}")
    s, d, m = (r.value for r in readings)
    return _after(live, chair, f"Manual BP {s:g}/{d:g} (MAP {m:g}) entered by {user}")


_LIMITS_OUTPUTS = (
    Output("limits-panel", "children", allow_duplicate=True),
    Output("limits-msg", "children", allow_duplicate=True),
    Output("limits-msg", "className", allow_duplicate=True),
    Output("chair-trend-rebuild", "data", allow_duplicate=True),
    Output("limits-confirm", "children", allow_duplicate=True),
    Output("limits-pending", "data", allow_duplicate=True),
)


def _limits_refused(live: LiveBay, chair: str, text: str, cls: str = "form-msg error") -> tuple[Any, ...]:
    """A refused (or cancelled) change: the message, and the fields back to the limits in force."""
    live.invalidate()
    return (limits_panel(live, chair), text, cls, no_update, [], None)


def _save_limits(live: LiveBay, chair: str, user: str, session_id: str,
                 overrides: list[dict[str, Any]], confirm: bool) -> tuple[Any, ...]:
    monitor = live.monitor
    before = monitor.engine.rules(chair)
    try:
        monitor.set_limits(session_id, overrides, user, confirm=confirm)
    except ConfirmationNeeded as exc:
        return (no_update, "Confirm or cancel the change.", "form-msg", no_update,
                limits_confirm_dialog(exc.changes), {"session": session_id, "rules": overrides})
    except InvalidLimits as exc:
        return _limits_refused(live, chair, f"Not saved: {exc.clinical}")
    except MonitorError as exc:
        return _limits_refused(live, chair, f"Not saved: {exc}")
    live.invalidate()
    changes = compare_rules(before, monitor.engine.rules(chair), live.config.chair_rules(chair))
    what = "; ".join(c.text for c in changes) or "no change"
    return (limits_panel(live, chair), f"Limits saved by {user}: {what}", "form-msg ok",
            _rebuild(), [], None)


def _open_session_id(live: LiveBay, chair: str) -> str | None:
    status = live.snapshot().chair(chair)
    return status.session.id if status is not None and status.session is not None else None


@callback(
    *_LIMITS_OUTPUTS,
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
        return _limits_refused(live, chair, f"Not saved: {exc.description}")
    if not user:
        return _limits_refused(live, chair, NEED_NAME)
    session_id = _open_session_id(live, chair)
    if session_id is None:
        return _limits_refused(live, chair, "This chair has no open session.")
    values = {(s["id"]["rule"], s["id"]["field"]): s.get("value") for s in ctx.states_list[0]}
    try:
        changed = limit_changes(live.monitor.engine.rules(chair), values)
        if not changed:
            return (no_update, "No limit changed.", "form-msg", no_update, [], None)
        overrides = merge_overrides(live.monitor.session(session_id).limit_overrides, changed)
    except RuleError as exc:
        return _limits_refused(live, chair, f"Not saved: {exc.clinical}")
    except ValueError as exc:
        return _limits_refused(live, chair, f"Not saved: {exc}")
    return _save_limits(live, chair, user, session_id, overrides, confirm=False)


@callback(
    *_LIMITS_OUTPUTS,
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
        return _limits_refused(live, chair, "Not saved: the change was cancelled.", "form-msg")
    try:
        user = actor("limits", nurse)
    except Forbidden as exc:
        return _limits_refused(live, chair, f"Not saved: {exc.description}")
    if not user:
        return _limits_refused(live, chair, NEED_NAME)
    if pending.get("session") != _open_session_id(live, chair):
        return _limits_refused(live, chair, "Not saved: the session has changed meanwhile.")
    return _save_limits(live, chair, user, pending["session"], list(pending.get("rules") or []),
                        confirm=True)
