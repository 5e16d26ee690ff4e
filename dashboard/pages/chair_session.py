"""The chair page's session workflow, as views: the session panel (start form with protocol
presets, or the running session with its steps, notes, manual NIBP and export links), the
baseline block (proposed, confirmed or entered), and the confirmation dialogs of ending a
session with open alarms and of starting an infusion without a baseline. The callbacks
that act on them are in :mod:`dashboard.pages.chair`.
"""

from __future__ import annotations

import uuid
from typing import Any

from dash import (
    dcc,
    html,
)

from dashboard.auth import wall_view
from dashboard.components import confirm_dialog
from dashboard.figures import (
    fmt_clock,
    session_phase,
)
from dashboard.live import LiveBay
from monitor.config import ProtocolPreset
from monitor.core import (
    BaselineProposal,
    ConfirmationRequired,
)
from monitor.parameters import by_key
from monitor.records import Session, SessionEventKind
from monitor.records import SessionState as S

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


def rebuild_token() -> str:
    """A new value for ``chair-trend-rebuild``: the trend is built again (after an action)."""
    return uuid.uuid4().hex[:8]




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
    found = live.monitor.sessions(chair, limit=1)
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

