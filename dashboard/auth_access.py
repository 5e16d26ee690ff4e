"""Who may do what, for the pages and the API: the logged-in user (:class:`LoginUser`), the
checks of a permission (:func:`require` answers 401/403, :func:`may` asks), who acts
(:func:`actor`), the read-only wall display (:func:`wall_view`), and the paths the login gate
treats apart (public, static, Dash's JSON, the push stream, role-only pages)."""

from __future__ import annotations

import math
from collections.abc import Callable

from flask import abort, current_app, has_request_context, session
from flask_login import UserMixin, current_user

from dashboard.auth_setup import AuthState
from monitor.users import User

__all__ = ["AUTH_KEY", "CLOCK_KEY", "LoginUser", "actor", "auth_enabled", "auth_state", "current_name",
           "login_check", "may", "require", "wall_view"]

AUTH_KEY = "CHAIRSIDE_AUTH"
CLOCK_KEY = "CHAIRSIDE_AUTH_CLOCK"  # seconds; tests replace it to move time
PUBLIC = frozenset({"/login", "/healthz", "/metrics", "/_favicon.ico"})
STATIC = ("/assets/", "/_dash-component-suites/")
DASH_JSON = ("/_dash-", "/_reload-hash")  # Dash's own JSON endpoints (layout, callbacks)
PUSH = "/live/"  # the screens' push stream (dashboard.push): the screen's own, not a person's
#: pages only some roles may open: the permission they need (else 403); never the wall display's.
#: The site view (every bay of the unit) and its stream: any logged-in role.
PAGES = {"/users": "users", "/site": "view", "/live/site-stream": "view"}


class LoginUser(UserMixin):
    def __init__(self, user: User, last_active: float = -math.inf) -> None:
        self.user = user
        self.id = user.username
        self.last_active = last_active  # the session's, as this request found it

    @property
    def permissions(self) -> frozenset[str]:
        return self.user.permissions


def auth_state() -> AuthState | None:
    """The app's login state (None before :func:`dashboard.auth.install_auth`)."""
    state: AuthState | None = current_app.config.get(AUTH_KEY)
    return state


def auth_enabled() -> bool:
    state = auth_state()
    return state is not None and state.config.enabled


def require(permission: str) -> str | None:
    """The logged-in user's name when they may do ``permission`` (401 without login, 403
    without the right); None when authentication is off."""
    if not auth_enabled():
        return None
    if not current_user.is_authenticated:
        abort(401, "log in first")
    if permission not in current_user.permissions:
        abort(403, f"your role ({current_user.user.role}) may not do this ({permission})")
    return str(current_user.id)


def may(permission: str) -> bool:
    """Whether a screen offers an action: with authentication off anyone (named) may; else
    the logged-in user's role must allow it (the action itself still checks, ``require``)."""
    if not has_request_context():
        return False
    if not auth_enabled():
        return True
    return bool(current_user.is_authenticated and permission in current_user.permissions)


def actor(permission: str, typed: str | None) -> str:
    """Who does an action: the logged-in user (checked for ``permission``), or, with
    authentication off, the name typed into the Nurse field (may be empty)."""
    user = require(permission)
    return user if user is not None else (typed or "").strip()


def wall_view() -> bool:
    """The current request is the read-only wall display's: login is on and nobody is logged
    in (the gate lets such a request through only with ``wall_display = true``). Its screen
    offers no actions."""
    return has_request_context() and auth_enabled() and not current_user.is_authenticated


def login_check() -> Callable[[], bool]:
    """For a response that outlives its request (the push stream): a check, to call later in
    the same app context, that the request's login still holds. Always true without login,
    and for the wall display (its address lets it in, and that does not change)."""
    state = auth_state()
    if state is None or not state.config.enabled or not current_user.is_authenticated:
        return lambda: True
    token, name = session.get("sid"), str(current_user.id)
    return lambda: state.verify(token, name) is not None


def current_name() -> str | None:
    return str(current_user.id) if auth_enabled() and current_user.is_authenticated else None
