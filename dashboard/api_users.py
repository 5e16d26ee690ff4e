"""The account routes of the HTTP API (:mod:`dashboard.api`): listing, adding, disabling,
enabling, a new password or role, ending an account's sessions, unlocking it. Each change goes
through :class:`monitor.user_admin.UserAdmin` (the same rules and audit as the /users page)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from dashboard.api_support import ApiError, acting_user, request_body, string_field
from dashboard.auth import CLOCK_KEY, require
from dashboard.live import LiveBay
from monitor.bay_store import bay_database
from monitor.timefmt import rfc3339
from monitor.user_admin import NotPermitted, UserAdmin
from monitor.users import UserError, UserStore

__all__ = ["add_user_routes"]


def add_user_routes(api: Blueprint, live: LiveBay) -> None:
    monitor = live.monitor

    def _accounts() -> UserStore:
        if not live.config.auth.enabled:
            raise ApiError(409, "authentication is off in this bay's configuration")
        return UserStore(bay_database(live.config.store, live.config.bay.id), live.config.store.key_file)

    def _admin() -> UserAdmin:
        return UserAdmin(_accounts(), monitor.audit, remote=request.remote_addr or "")

    def _now() -> float:
        return float(current_app.config[CLOCK_KEY]())

    @api.get("/api/v1/users")
    def users() -> Any:
        require("users")
        accounts = _accounts()
        now = _now()
        locked = accounts.locked_until(now)
        open_ = [s.username for s in accounts.sessions.open_sessions(now=now)]
        return jsonify({"users": [{
            "username": u.username, "role": u.role, "disabled": u.disabled,
            "sessions": open_.count(u.username),
            "locked_until": rfc3339(locked[u.username]) if u.username in locked else None,
        } for u in accounts.list()]})

    @api.post("/api/v1/users")
    def add_user() -> Any:
        body = request_body()
        by = acting_user(body, "users")
        name, role, password = body.get("username"), body.get("role"), body.get("password")
        if not all(isinstance(v, str) for v in (name, role, password)):
            raise ApiError(400, "the body needs \"username\", \"role\" and \"password\" strings")
        try:  # checked (a charge nurse makes no admin) and audited by UserAdmin
            u = _admin().add(by, name, role, password)
        except NotPermitted as exc:
            raise ApiError(403, str(exc)) from None
        except UserError as exc:
            raise ApiError(400, str(exc)) from None
        return jsonify({"username": u.username, "role": u.role, "disabled": u.disabled}), 201

    def _manage(username: str, change: Any, key: str | None = None) -> Any:
        """An account change through UserAdmin (the same rules and audit as the /users
        page): 403 where a rule refuses, 404 for no such account, 409 when it is so already,
        400 for a bad role or password. ``key``: the change also returns a count, answered
        under it."""
        try:
            done = change(_admin())
        except NotPermitted as exc:
            raise ApiError(403, str(exc)) from None
        except UserError as exc:  # no such account; already so (409); a bad role or password
            status = 404 if _accounts().get(username) is None else 409 if "already" in str(exc) else 400
            raise ApiError(status, str(exc)) from None
        u, extra = (done[0], {key: done[1]}) if key else (done, {})
        return jsonify({"username": u.username, "role": u.role, "disabled": u.disabled, **extra})

    @api.post("/api/v1/users/<username>/disable")
    def disable_user(username: str) -> Any:
        by = acting_user(request_body(), "users")
        return _manage(username, lambda admin: admin.set_disabled(by, username, True))

    @api.post("/api/v1/users/<username>/enable")
    def enable_user(username: str) -> Any:
        by = acting_user(request_body(), "users")
        return _manage(username, lambda admin: admin.set_disabled(by, username, False))

    @api.post("/api/v1/users/<username>/password")
    def set_user_password(username: str) -> Any:  # the account's sessions end
        body = request_body()
        by = acting_user(body, "users")
        password = string_field(body, "password", "the new password (a string)")
        return _manage(username, lambda admin: admin.set_password(by, username, password))

    @api.post("/api/v1/users/<username>/role")
    def set_user_role(username: str) -> Any:
        body = request_body()
        by = acting_user(body, "users")
        role = string_field(body, "role", "nurse, charge or admin")
        return _manage(username, lambda admin: admin.set_role(by, username, role))

    @api.post("/api/v1/users/<username>/end-sessions")
    def end_user_sessions(username: str) -> Any:
        by = acting_user(request_body(), "users")
        return _manage(username, lambda admin: admin.end_sessions(by, username), "sessions_ended")

    @api.post("/api/v1/users/<username>/unlock")
    def unlock_user(username: str) -> Any:
        by = acting_user(request_body(), "users")
        return _manage(username, lambda admin: admin.unlock(by, username), "failures_forgotten")
