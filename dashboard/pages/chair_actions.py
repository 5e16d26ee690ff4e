"""The chair page's session actions, behind its callbacks: what every action's callback
returns (the panels rebuilt, the message, the dialog), and one session step (infusion
events, notes, baselines, the end of the session) taken through the core with its
refusals turned into messages or a confirmation dialog.
"""

from __future__ import annotations

from typing import Any

from dash import (
    Output,
    ctx,
    html,
    no_update,
)
from dash.exceptions import PreventUpdate

from dashboard.auth import actor
from dashboard.components import NEED_NAME
from dashboard.live import LiveBay
from dashboard.pages import current_live
from dashboard.pages.chair_limits import limits_panel
from dashboard.pages.chair_session import (
    BASELINE_FIELDS,
    K,
    baseline_block,
    end_dialog,
    rebuild_token,
    session_panel,
    start_dialog,
)
from monitor.core import (
    ConfirmationRequired,
    MonitorError,
)
from monitor.records import Session


def after_action(live: LiveBay, chair: str, text: str, ok: bool = True,
           ended: Session | None = None) -> tuple[Any, ...]:
    live.invalidate()
    return (session_panel(live, chair, ended), text, "form-msg " + ("ok" if ok else "error"),
            limits_panel(live, chair), rebuild_token(), [], baseline_block(live, chair))


ACTION_OUTPUTS = (
    Output("session-panel", "children", allow_duplicate=True),
    Output("session-msg", "children", allow_duplicate=True),
    Output("session-msg", "className", allow_duplicate=True),
    Output("limits-panel", "children", allow_duplicate=True),
    Output("chair-trend-rebuild", "data", allow_duplicate=True),
    Output("confirm-modal", "children", allow_duplicate=True),
    Output("baseline-block", "children", allow_duplicate=True),
)


def action_error(text: str) -> tuple[Any, ...]:
    return (no_update, text, "form-msg error", no_update, no_update, [], no_update)


def ask(dialog: html.Div) -> tuple[Any, ...]:
    return (no_update, no_update, no_update, no_update, no_update, dialog, no_update)



def session_action(target: Any, chair: str, nurse: str | None, text: str | None,
                    baseline: tuple[float | None, ...]) -> tuple[Any, ...]:
    """Carry out a session step (a button's id, or a confirmed dialog's action)."""
    if target is None or not any(t["value"] for t in ctx.triggered):
        raise PreventUpdate
    user = actor("sessions", nurse)
    if not user:
        return action_error(NEED_NAME)
    live = current_live()
    monitor = live.monitor
    status = live.snapshot().chair(chair)
    session = status.session if status else None
    if session is None:
        return action_error("This chair has no open session.")
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
                return action_error("Enter at least one baseline value.")
            new = monitor.set_baseline(session.id, values, user)
            done = "Baseline set"
        else:
            kind = K(target["kind"])
            detail = (text or "").strip() if kind in (K.RATE_CHANGED, K.BOLUS, K.NOTE) else ""
            if kind is K.INFUSION_STARTED and not session.baseline:
                return ask(start_dialog(monitor.baseline_proposal(chair)))
            new = monitor.session_step(session.id, kind, user, detail)
            done = kind.value.replace("_", " ").capitalize() + (f": {detail}" if detail else "")
    except ConfirmationRequired as exc:
        return ask(end_dialog(exc))
    except (MonitorError, ValueError) as exc:
        return action_error(f"Not recorded: {exc}")
    return after_action(live, chair, f"{done} (by {user})", ended=None if new.state.is_open else new)

