"""Account management (``/users``), for the roles with the ``users`` permission (charge,
admin): the accounts, and forms to add one, reset a password, change a role, disable or
enable, unlock and end sessions. Every change goes through :class:`monitor.user_admin.UserAdmin`
(which refuses what the acting user may not do) and is an operator action in the audit
chain. Other roles get 403 for the page (``dashboard.auth``) and for its callback."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import request

from dashboard.auth import auth_enabled, may, require
from dashboard.figures import fmt_clock, fmt_date
from dashboard.pages import current_live
from monitor.bay_store import bay_database
from monitor.user_admin import UserAdmin
from monitor.users import ROLES, User, UserError, UserStore

dash.register_page(__name__, path="/users", name="Users")

#: the page's buttons and the change each makes
BUTTONS = {"users-add-btn": "add", "users-password-btn": "password", "users-role-btn": "role",
           "users-disable-btn": "disable", "users-enable-btn": "enable", "users-unlock-btn": "unlock",
           "users-end-btn": "end_sessions"}
PASSWORD_FIELDS = ("users-password", "users-password2", "users-new-password", "users-new-password2")
NOT_PERMITTED = "Accounts are managed by a charge nurse or an administrator."
AUTH_OFF = "Accounts need login: set [auth] enabled = true in the bay's configuration."


def _store() -> UserStore:
    config = current_live().config
    return UserStore(bay_database(config.store, config.bay.id), config.store.key_file)


def _when(t: float) -> str:
    return f"{fmt_date(t)} {fmt_clock(t, seconds=False)}"  # the bay's time


def users_table(users: list[User]) -> html.Table:
    head = html.Tr([html.Th(h) for h in ("User", "Role", "Status", "Created", "Changed")])
    rows = [html.Tr([html.Td(u.username, className="msg"), html.Td(u.role),
                     html.Td("disabled" if u.disabled else "enabled",
                             className="user-disabled" if u.disabled else "user-enabled"),
                     html.Td(_when(u.created_at)), html.Td(_when(u.updated_at))],
                    **{"data-user": u.username}) for u in users]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table users-table")


def _options(users: list[User]) -> list[dict[str, str]]:
    return [{"label": u.username, "value": u.username} for u in users]


def _field(label: str, cid: str, control: Any) -> html.Div:
    return html.Div([html.Label(label, htmlFor=cid), control], className="field")


def _password(cid: str) -> dcc.Input:
    return dcc.Input(id=cid, type="password", autoComplete="new-password", maxLength=1024, className="input")


def _roles(cid: str, value: str | None) -> dcc.Dropdown:
    return dcc.Dropdown(id=cid, options=[{"label": r, "value": r} for r in ROLES], value=value,
                        clearable=False, className="dropdown")


def layout(**_: Any) -> html.Div:
    if not auth_enabled():
        return html.Div(html.Section(html.P(AUTH_OFF, className="hint"), className="card"),
                        className="users-page")
    if not may("users"):  # the page itself answers 403 (dashboard.auth); a link followed in the app
        return html.Div(html.Section(html.P(NOT_PERMITTED, className="form-msg error"), className="card"),
                        className="users-page")
    users = _store().list()
    return html.Div([
        html.Section([html.H2("Accounts"), html.Div(users_table(users), id="users-table")], className="card"),
        html.Div("", id="users-msg", className="form-msg", role="status"),
        html.Section([
            html.H2("Manage an account"),
            html.Div([
                _field("Account", "users-account", dcc.Dropdown(
                    id="users-account", options=_options(users), value=None, clearable=False,
                    placeholder="choose an account", className="dropdown")),
                _field("Role", "users-role", _roles("users-role", None)),
                html.Div(html.Button("Change role", id="users-role-btn", className="btn", n_clicks=0),
                         className="field field-button"),
            ], className="field-row"),
            html.Div([
                _field("New password", "users-password", _password("users-password")),
                _field("Repeat it", "users-password2", _password("users-password2")),
                html.Div(html.Button("Reset password", id="users-password-btn", className="btn", n_clicks=0),
                         className="field field-button"),
            ], className="field-row"),
            html.Div([
                html.Button("Disable", id="users-disable-btn", className="btn btn-danger", n_clicks=0),
                html.Button("Enable", id="users-enable-btn", className="btn", n_clicks=0),
                html.Button("Unlock", id="users-unlock-btn", className="btn", n_clicks=0),
                html.Button("End sessions", id="users-end-btn", className="btn", n_clicks=0),
            ], className="btn-row"),
            html.P("A disabled account cannot log in and its open sessions end at once. Every change "
                   "is recorded in the audit trail with your name.", className="hint"),
        ], className="card"),
        html.Section([
            html.H2("Add an account"),
            html.Div([
                _field("User name", "users-new-name", dcc.Input(
                    id="users-new-name", type="text", maxLength=64, autoComplete="off", className="input")),
                _field("Role", "users-new-role", _roles("users-new-role", "nurse")),
                _field("Password", "users-new-password", _password("users-new-password")),
                _field("Repeat it", "users-new-password2", _password("users-new-password2")),
                html.Div(html.Button("Add account", id="users-add-btn", className="btn btn-primary",
                                     n_clicks=0), className="field field-button"),
            ], className="field-row"),
        ], className="card"),
    ], className="users-page")


def apply_change(admin: UserAdmin, by: str, action: str, values: dict[str, Any]) -> str:
    """Make the change a button asks for; the message saying what was done (UserError, with
    the reason, when not done)."""
    if action == "add":
        name, role = values.get("users-new-name") or "", values.get("users-new-role") or ""
        if (values.get("users-new-password") or "") != (values.get("users-new-password2") or ""):
            raise UserError("the two passwords differ")
        u = admin.add(by, name.strip(), role, values.get("users-new-password") or "")
        return f"Added {u.username} ({u.role})."
    name = values.get("users-account")
    if not isinstance(name, str) or not name:
        raise UserError("choose an account first")
    if action == "password":
        password = values.get("users-password") or ""
        if password != (values.get("users-password2") or ""):
            raise UserError("the two passwords differ")
        admin.set_password(by, name, password)
        return f"Password of {name} reset."
    if action == "role":
        before = admin.users.require(name).role
        u = admin.set_role(by, name, values.get("users-role") or "")
        return f"{name} is now {u.role} (was {before})."
    if action in ("disable", "enable"):
        admin.set_disabled(by, name, action == "disable")
        return (f"{name} disabled: the account cannot log in, its open sessions ended."
                if action == "disable" else f"{name} enabled.")
    if action == "unlock":
        admin.unlock(by, name)
        return f"{name} unlocked."
    if action == "end_sessions":
        admin.end_sessions(by, name)
        return f"Sessions of {name} ended."
    raise UserError(f"unknown action {action!r}")


_STATES = ("users-account", "users-role", "users-password", "users-password2", "users-new-name",
           "users-new-role", "users-new-password", "users-new-password2")


@callback(
    Output("users-msg", "children"), Output("users-msg", "className"), Output("users-table", "children"),
    Output("users-account", "options"), Output("users-new-name", "value"),
    *[Output(f, "value") for f in PASSWORD_FIELDS],
    *[Input(b, "n_clicks") for b in BUTTONS],
    *[State(s, "value") for s in _STATES],
    prevent_initial_call=True,
)
def manage(*args: Any) -> tuple[Any, ...]:
    target = ctx.triggered_id
    if target not in BUTTONS or not any(t["value"] for t in ctx.triggered):
        raise PreventUpdate
    by = require("users")  # 401 without login, 403 for a role without the right
    if by is None:
        return (AUTH_OFF, "form-msg error", no_update, no_update, no_update, *[no_update] * 4)
    live = current_live()
    admin = UserAdmin(_store(), live.monitor.audit, remote=request.remote_addr or "")
    values = dict(zip(_STATES, args[len(BUTTONS):], strict=True))
    clear = [""] * len(PASSWORD_FIELDS)  # a password never stays in a field after a click
    try:
        text = apply_change(admin, by, BUTTONS[target], values)
    except UserError as exc:
        return (f"Not done: {exc}", "form-msg error", no_update, no_update, no_update, *clear)
    users = admin.users.list()
    return (text, "form-msg ok", users_table(users), _options(users),
            "" if target == "users-add-btn" else no_update, *clear)


@callback(Output("users-role", "value"), Input("users-account", "value"), prevent_initial_call=True)
def show_role(name: str | None) -> Any:
    """Choosing an account shows its role in the Role field."""
    require("users")
    user = _store().get(name) if isinstance(name, str) and name else None
    return user.role if user is not None else no_update
