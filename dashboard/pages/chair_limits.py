"""The chair page's limits: the form of the session's alarm limits (read-only for a role that
may not change them), the dialog confirming a change that widens a limit past the profile's
default, and the saving of a change through the core (refused, asked, or saved). The
callbacks are in :mod:`dashboard.pages.chair`.
"""

from __future__ import annotations

from typing import Any

from dash import (
    Output,
    dcc,
    html,
    no_update,
)

from dashboard.auth import may
from dashboard.live import LiveBay
from dashboard.pages.chair_session import rebuild_token
from monitor.alarm_rules import LimitRule, compare_rules
from monitor.core import (
    ConfirmationNeeded,
    InvalidLimits,
    MonitorError,
)
from monitor.parameters import PARAMETERS, by_key

LIMITS_READ_ONLY = "Alarm limits can be changed by a charge nurse or an administrator."
_ORDER = {p.key: i for i, p in enumerate(PARAMETERS)}




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
    rules = _sorted_rules(monitor.rules(chair))
    baseline = monitor.baseline(chair)
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



LIMITS_OUTPUTS = (
    Output("limits-panel", "children", allow_duplicate=True),
    Output("limits-msg", "children", allow_duplicate=True),
    Output("limits-msg", "className", allow_duplicate=True),
    Output("chair-trend-rebuild", "data", allow_duplicate=True),
    Output("limits-confirm", "children", allow_duplicate=True),
    Output("limits-pending", "data", allow_duplicate=True),
)


def limits_refused(live: LiveBay, chair: str, text: str, cls: str = "form-msg error") -> tuple[Any, ...]:
    """A refused (or cancelled) change: the message, and the fields back to the limits in force."""
    live.invalidate()
    return (limits_panel(live, chair), text, cls, no_update, [], None)


def save_limits_change(live: LiveBay, chair: str, user: str, session_id: str,
                 overrides: list[dict[str, Any]], confirm: bool) -> tuple[Any, ...]:
    monitor = live.monitor
    before = monitor.rules(chair)
    try:
        monitor.set_limits(session_id, overrides, user, confirm=confirm)
    except ConfirmationNeeded as exc:
        return (no_update, "Confirm or cancel the change.", "form-msg", no_update,
                limits_confirm_dialog(exc.changes), {"session": session_id, "rules": overrides})
    except InvalidLimits as exc:
        return limits_refused(live, chair, f"Not saved: {exc.clinical}")
    except MonitorError as exc:
        return limits_refused(live, chair, f"Not saved: {exc}")
    live.invalidate()
    changes = compare_rules(before, monitor.rules(chair), live.config.chair_rules(chair))
    what = "; ".join(c.text for c in changes) or "no change"
    return (limits_panel(live, chair), f"Limits saved by {user}: {what}", "form-msg ok",
            rebuild_token(), [], None)


def open_session_id(live: LiveBay, chair: str) -> str | None:
    status = live.snapshot().chair(chair)
    return status.session.id if status is not None and status.session is not None else None

