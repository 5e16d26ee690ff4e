"""Login for the dashboard and the HTTP API (flask-login), roles and automatic logoff.

With ``[auth] enabled = true`` (the default) every request needs a logged-in user, except
``/login``, ``/healthz``, ``/metrics`` and the static files the login page and the Dash
front end load. Without a session, the API, the Dash callbacks and Dash's layout answer
``401 {"error": ...}``; pages redirect to ``/login``. A role lacking the permission an
action needs gets 403 (see :data:`monitor.users.ROLES`).

- Accounts live in the store (``users`` table; ``chairside user add|passwd|disable|list``),
  passwords as argon2id hashes.
- Sessions live on the server (``auth_sessions``, :mod:`monitor.logins`): the cookie holds
  a random token whose record every request checks, so logout, a password change, disabling
  the account and an admin's "end sessions" end every copy of the cookie at once. The
  cookie is set at login only (not renewed by use); a session ends after
  ``session_max_hours`` whatever the activity.
- Automatic logoff: a session with no activity for ``inactivity_minutes`` is ended (the
  dashboard's own once-a-second refresh does not count as activity).
- Failed logins are throttled per account and per client address (delays, then a lockout;
  429 with Retry-After at once, never a sleeping server thread); password checks run at most
  ``login_parallel`` at a time (503 "busy" beyond), so guessing cannot slow the bay screen.
- ``wall_display = true``: without login the pages show the bay, read-only: no action
  buttons (:func:`wall_view`), and every action still needs a logged-in user. Only to
  clients whose address is in ``wall_display_from`` (default: loopback only); everyone
  else gets the login page (401 for Dash's JSON).
- ``next`` (where the login sends the user) must be a path on this server: ``//host``,
  ``/\\host``, a scheme, control characters or white space in it answer 400 with a message.
- The secret key is made on first run and kept with mode 0600 next to the database.
- Cookies: HttpOnly, SameSite=Strict, Secure with ``secure_cookies = true`` (behind TLS).
  The login form carries a per-session CSRF token; JSON logins need none (a cross-site page
  cannot send JSON without a CORS preflight, which is never granted).
- Login, logout (also by inactivity or lifetime), failed logins (with their count in a
  row), lockouts, refused attempts (one counted record) and exports are operator actions in
  the audit chain.
- Pages only some roles may open (:data:`PAGES`: ``/users``; ``/site``, for any logged-in
  role) answer 403 to the others, and are never part of the wall display. The login and
  logout pages carry the bay's header (its name, the not-a-medical-device notice).

This module installs login on a server (the gate, /login and /logout, :func:`install_auth`);
who may do what is :mod:`dashboard.auth_access`, the login pages and form checks
:mod:`dashboard.login_pages`, the secret key and throttle :mod:`dashboard.auth_setup`. Their
public names are re-exported here.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask, abort, jsonify, redirect, request, session
from flask_login import LoginManager, current_user, login_user, logout_user

from dashboard.auth_access import (
    AUTH_KEY,
    CLOCK_KEY,
    DASH_JSON,
    PAGES,
    PUBLIC,
    PUSH,
    STATIC,
    LoginUser,
    actor,
    auth_enabled,
    auth_state,
    current_name,
    login_check,
    may,
    require,
    wall_view,
)
from dashboard.auth_setup import AuthState, secret_key, throttle_for
from dashboard.live import LiveBay
from dashboard.login_pages import BadNext, csrf_ok, csrf_token, login_form, page, refused, safe_next
from monitor.logins import Failures, address_key, user_key
from monitor.users import USERNAME_RE, User

__all__ = ["AUTH_KEY", "BadNext", "LoginUser", "actor", "auth_enabled", "current_name", "install_auth",
           "login_check", "may", "require", "secret_key", "throttle_for", "wall_client", "wall_view"]

log = logging.getLogger("chairside.auth")


def wall_client(networks: tuple[Any, ...]) -> bool:
    """The request comes from an address the wall display may be shown to (``networks``:
    ``[auth] wall_display_from``; an IPv4 client seen as ``::ffff:a.b.c.d`` counts as a.b.c.d)."""
    try:
        addr = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def _background() -> bool:
    """A request the screen makes by itself (its push stream, an interval's tick), not a
    person's activity."""
    if request.path.startswith(PUSH):
        return True
    if request.path != "/_dash-update-component":
        return False
    body = request.get_json(silent=True)
    changed = body.get("changedPropIds") if isinstance(body, dict) else None
    return isinstance(changed, list) and bool(changed) and all(
        str(c).endswith(".n_intervals") for c in changed)


def _audit(user: str, action: str, **detail: Any) -> None:
    state = auth_state()
    if state is not None:
        detail = {"remote": request.remote_addr or "", **detail}
        state.live.monitor.audit(user, action, detail=detail)


def _report_refused(old: Failures | None, scope: str, name: str) -> None:
    """One counted audit record for the attempts a (now forgotten) count refused."""
    if old is not None and old.refused:
        _audit(name, "login_refused", scope=scope, attempts=old.refused, failures=old.failures,
               since=old.first_at)


def install_auth(server: Flask, live: LiveBay) -> None:
    """Install login, roles and logoff on the server (once; ``install_api`` calls it too)."""
    if AUTH_KEY in server.config:
        return
    config = live.config
    state = AuthState(config, live)
    server.config[AUTH_KEY] = state
    server.config.setdefault(CLOCK_KEY, time.time)
    if not config.auth.enabled:
        return
    path = config.auth.secret_key_file or config.store.path.with_name(config.store.path.name + ".secret")
    server.secret_key = secret_key(Path(path))
    server.config.update(
        SESSION_COOKIE_NAME="chairside_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_SECURE=config.auth.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Strict",
        REMEMBER_COOKIE_SECURE=config.auth.secure_cookies,
        SESSION_REFRESH_EACH_REQUEST=False,  # the cookie is set at login, not renewed by use
    )
    manager = LoginManager(server)
    manager.session_protection = "strong"
    users = state.users
    assert users is not None
    idle_s = config.auth.inactivity_minutes * 60
    max_age_s = config.auth.session_max_hours * 3600

    def verify(token: object, username: str) -> LoginUser | None:
        """The login of a session cookie, if it still holds: its server-side record and the
        account's, in one query on this thread's kept connection, so a revocation or a
        disabled account applies to the next request (and to an open push stream)."""
        if not isinstance(token, str):
            return None
        found = state.sessions.verify(token, username, clock(), idle_s)
        if found.status in ("inactivity", "lifetime"):
            _audit(username, "logout", reason=found.status)
            log.info("user %s logged off (%s)", username, found.status)
        if found.status != "ok":
            return None
        return LoginUser(User(username, found.role, found.disabled, found.created_at, found.updated_at),
                         found.last_active)

    state.verify = verify

    @manager.user_loader
    def load(username: str) -> LoginUser | None:
        return verify(session.get("sid"), username)

    def clock() -> float:
        fn: Callable[[], float] = server.config[CLOCK_KEY]
        return fn()

    def unauthorized() -> Any:
        if request.path.startswith(("/api/", PUSH, *DASH_JSON)):
            return jsonify({"error": "login required"}), 401
        if request.path == "/":
            return redirect("/login")
        return redirect("/login?next=" + quote(request.full_path.rstrip("?"), safe="/"))

    @server.before_request
    def gate() -> Any:
        path = request.path
        if path in PUBLIC or path.startswith(STATIC):
            return None
        if current_user.is_authenticated:
            now = clock()
            if not _background() and now - current_user.last_active >= state.sessions.TOUCH_S:
                state.sessions.touch(session["sid"], now)  # (a write at most once a second)
            need = PAGES.get(path)
            if need is not None and need not in current_user.permissions:
                return page("Not permitted - Chairside", (
                    f"<p class='login-error' role='alert'>Your role ({escape(current_user.user.role)}) "
                    "may not open this page.</p><p><a class='btn' href='/'>Back to the bay</a></p>"), 403)
            return None
        if "_user_id" in session or "sid" in session:
            session.clear()  # a cookie whose session has ended (logout, revoked, timed out)
        if path == "/logout":
            return redirect("/login")
        wall = config.auth.wall_display and wall_client(config.auth.wall_display_from)
        if wall and request.method in ("GET", "HEAD") and not path.startswith("/api/") and path not in PAGES:
            return None  # the read-only wall display: pages
        if wall and path.startswith(DASH_JSON):
            return None  # and their callbacks; acting ones check require() and get 401
        return unauthorized()

    def failed(name: str, keys: list[str]) -> None:
        """Count a checked, failed login on the account and the address; audit it with its
        counts, a lock it causes, and what an expired count had refused."""
        results = state.throttle.fail(keys, clock())
        for (key, new, gone), scope in zip(results, ("account", "address"), strict=True):
            _report_refused(gone, scope, name)
            if new.locked_until is not None:
                _audit(name, "login_locked", scope=scope, failures=new.failures,
                       minutes=round((new.locked_until - new.last_at) / 60, 2))
                log.warning("login locked for %s %s after %d failures", scope, key.split(":", 1)[1],
                            new.failures)
        _audit(name, "login_failed", failures=results[0][1].failures, address_failures=results[1][1].failures)

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            try:
                return login_form(next_url=safe_next(request.args.get("next")))
            except BadNext as exc:
                return login_form(str(exc), 400)
        as_json = request.is_json
        if as_json:
            body = request.get_json(silent=True)
            body = body if isinstance(body, dict) else {}
        else:
            body = request.form
            if not csrf_ok(body.get("csrf")):
                return login_form("The form expired; please log in again.", 400)
        username, password = body.get("username"), body.get("password")
        try:
            next_url = safe_next(body.get("next") if isinstance(body.get("next"), str | None) else "?")
        except BadNext as exc:
            if as_json:
                return jsonify({"error": str(exc)}), 400
            return login_form(str(exc), 400)
        if not isinstance(username, str) or not isinstance(password, str) or len(password) > 1024:
            username, password = "", ""
        name = username if USERNAME_RE.fullmatch(username) else "(invalid name)"
        remote = request.remote_addr or ""
        keys = [user_key(name), address_key(remote)]
        wait = state.throttle.wait(keys, clock())
        if wait > 0:  # refused at once, the password unchecked: no thread sleeps, no hash runs
            state.throttle.refuse(keys)
            seconds = max(1, math.ceil(wait))
            return refused(429, f"Too many failed logins: try again in {seconds} s.", seconds, as_json,
                            next_url)
        if not state.checks.enter():
            return refused(503, "The server is busy checking other logins: try again in a moment.", 1,
                            as_json, next_url)
        try:
            user = users.authenticate(username, password)  # the same cost for any name
        finally:
            state.checks.leave()
        if user is None:
            failed(name, keys)
            log.warning("failed login for %r from %s", username[:64], remote)
            if as_json:
                return jsonify({"error": "wrong user name or password, or the account is disabled"}), 401
            return login_form("Wrong user name or password, or the account is disabled.", 401, next_url)
        _report_refused(state.throttle.clear(keys[0]), "account", name)
        session.clear()  # no session fixation: a fresh session (and CSRF token) per login
        login_user(LoginUser(user))
        session["sid"] = state.sessions.create(user.username, clock(), max_age_s, remote)
        csrf_token()
        _audit(user.username, "login", role=user.role)
        if as_json:
            return jsonify({"user": user.username, "role": user.role})
        return redirect(next_url)

    @server.route("/logout", methods=["GET", "POST"])
    def logout() -> Any:
        if request.method == "GET":  # a confirmation form: logging out changes state
            return page("Log out - Chairside", (
                f"<p>Logged in as {escape(str(current_user.id))} ({escape(current_user.user.role)}).</p>"
                "<form method='post' action='/logout'>"
                f"<input type='hidden' name='csrf' value='{escape(csrf_token())}'>"
                "<button type='submit' class='btn btn-primary'>Log out</button> "
                "<a class='btn' href='/'>Back to the bay</a></form>"))
        if not request.is_json and not csrf_ok(request.form.get("csrf")):
            abort(400, "the form expired")
        name = str(current_user.id)
        state.sessions.end(session["sid"], clock(), "logout")  # every copy of the cookie with it
        logout_user()
        session.clear()
        _audit(name, "logout", reason="user")
        if request.is_json:
            return jsonify({"logged_out": name})
        return redirect("/login")
