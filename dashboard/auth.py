"""Login for the dashboard and the HTTP API (flask-login), roles and automatic logoff.

With ``[auth] enabled = true`` (the default) every request needs a logged-in user, except
``/login``, ``/healthz``, ``/metrics`` and the static files the login page and the Dash
front end load. Without a session, the API, the Dash callbacks and Dash's layout answer
``401 {"error": ...}``; pages redirect to ``/login``. A role lacking the permission an
action needs gets 403 (see :data:`monitor.users.ROLES`).

- Accounts live in the store (``users`` table; ``chairside user add|passwd|disable|list``),
  passwords as argon2id hashes.
- Automatic logoff: a session with no activity for ``inactivity_minutes`` is ended (the
  dashboard's own once-a-second refresh does not count as activity).
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
- Login, logout (also by inactivity), failed logins and exports are operator actions in the
  audit chain.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    has_request_context,
    jsonify,
    redirect,
    request,
    session,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.urls import iri_to_uri

from dashboard.live import LiveBay
from monitor.config import BayConfig
from monitor.users import USERNAME_RE, User, UserStore

__all__ = ["AUTH_KEY", "BadNext", "LoginUser", "actor", "auth_enabled", "install_auth", "may", "require",
           "secret_key", "wall_client", "wall_view"]

log = logging.getLogger("chairside.auth")

AUTH_KEY = "CHAIRSIDE_AUTH"
CLOCK_KEY = "CHAIRSIDE_AUTH_CLOCK"  # seconds; tests replace it to move time
PUBLIC = frozenset({"/login", "/healthz", "/metrics", "/_favicon.ico"})
STATIC = ("/assets/", "/_dash-component-suites/")
DASH_JSON = ("/_dash-", "/_reload-hash")  # Dash's own JSON endpoints (layout, callbacks)


class LoginUser(UserMixin):
    def __init__(self, user: User) -> None:
        self.user = user
        self.id = user.username

    @property
    def permissions(self) -> frozenset[str]:
        return self.user.permissions


class _Auth:
    def __init__(self, config: BayConfig, live: LiveBay) -> None:
        self.config = config.auth
        self.live = live
        self.users = UserStore(config.store.path) if self.config.enabled else None


def secret_key(path: Path) -> bytes:
    """The key that signs session cookies: made on first use (mode 0600), read after."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    if fd < 0:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("secret key %s had mode %o; set to 0600", path, mode)
            path.chmod(0o600)
        key = path.read_text("ascii").strip()
        if len(key) < 64:
            raise RuntimeError(f"secret key file {path} is too short; delete it to make a new one")
        return key.encode("ascii")
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        key = secrets.token_hex(32)
        fh.write(key + "\n")
    log.info("made a new secret key in %s", path)
    return key.encode("ascii")


def _state() -> _Auth | None:
    state: _Auth | None = current_app.config.get(AUTH_KEY)
    return state


def auth_enabled() -> bool:
    state = _state()
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


def current_name() -> str | None:
    return str(current_user.id) if auth_enabled() and current_user.is_authenticated else None


def _audit(user: str, action: str, **detail: Any) -> None:
    state = _state()
    if state is not None:
        detail = {"remote": request.remote_addr or "", **detail}
        state.live.monitor.audit(user, action, detail=detail)


def _csrf() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok(sent: str | None) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and isinstance(sent, str) and hmac.compare_digest(token, sent)


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
            "</title><link rel='stylesheet' href='/assets/chairside.css'></head><body class='login-page'>"
            f"<main class='login'><h1>Chairside</h1>{body}</main></body></html>")
    return Response(html, status=status, mimetype="text/html")


def _login_form(error: str = "", status: int = 200, next_url: str = "/") -> Response:
    msg = f"<p class='login-error' role='alert'>{escape(error)}</p>" if error else ""
    return _page("Log in - Chairside", (
        f"{msg}<form method='post' action='/login' class='login-form'>"
        f"<input type='hidden' name='csrf' value='{escape(_csrf())}'>"
        f"<input type='hidden' name='next' value='{escape(next_url)}'>"
        "<label>User <input name='username' autocomplete='username' required autofocus></label>"
        "<label>Password <input name='password' type='password' autocomplete='current-password' "
        "required></label><button type='submit' class='btn'>Log in</button></form>"), status)


class BadNext(ValueError):
    """A login's ``next`` that is not a path on this server."""


_LOCAL_PATH = re.compile(r"/(?![/\\])[^\x00-\x20\x7f-\x9f\\]{0,2000}")
BAD_NEXT = "next must be a path on this server (like /alarms); after logging in you see the bay"


def _safe_next(url: str | None) -> str:
    """Where a login sends the user: ``url`` when it is a path on this server, "/" when none
    is given. Raises :class:`BadNext` for anything a browser could take elsewhere: ``//host``
    and ``/\\host``, a scheme, and control characters or white space (browsers drop TAB, CR and
    LF, so ``/<TAB>/host`` is ``//host``; CR LF would split the Location header)."""
    if url is None or url == "":
        return "/"
    if not _LOCAL_PATH.fullmatch(url) or any(char.isspace() for char in url):
        raise BadNext(BAD_NEXT)
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise BadNext(BAD_NEXT)
    return iri_to_uri(url)  # ASCII only in the Location header


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
    """A request the screen makes by itself (an interval's tick), not a person's activity."""
    if request.path != "/_dash-update-component":
        return False
    body = request.get_json(silent=True)
    changed = body.get("changedPropIds") if isinstance(body, dict) else None
    return isinstance(changed, list) and bool(changed) and all(
        str(c).endswith(".n_intervals") for c in changed)


def install_auth(server: Flask, live: LiveBay) -> None:
    """Install login, roles and logoff on the server (once; ``install_api`` calls it too)."""
    if AUTH_KEY in server.config:
        return
    config = live.config
    state = _Auth(config, live)
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
    )
    manager = LoginManager(server)
    manager.session_protection = "strong"
    users = state.users
    assert users is not None
    idle_s = config.auth.inactivity_minutes * 60

    @manager.user_loader
    def load(username: str) -> LoginUser | None:
        user = users.get(username)  # a disabled account loses its sessions at once
        return LoginUser(user) if user is not None and not user.disabled else None

    def clock() -> float:
        fn: Callable[[], float] = server.config[CLOCK_KEY]
        return fn()

    def unauthorized() -> Any:
        if request.path.startswith(("/api/", *DASH_JSON)):
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
            last = session.get("last_active")
            if not isinstance(last, int | float) or now - last > idle_s:
                name = str(current_user.id)
                logout_user()
                session.clear()
                _audit(name, "logout", reason="inactivity")
                log.info("user %s logged off after inactivity", name)
            else:
                if not _background():
                    session["last_active"] = now
                return None
        if path == "/logout":
            return redirect("/login")
        wall = config.auth.wall_display and wall_client(config.auth.wall_display_from)
        if wall and request.method in ("GET", "HEAD") and not path.startswith("/api/"):
            return None  # the read-only wall display: pages
        if wall and path.startswith(DASH_JSON):
            return None  # and their callbacks; acting ones check require() and get 401
        return unauthorized()

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            try:
                return _login_form(next_url=_safe_next(request.args.get("next")))
            except BadNext as exc:
                return _login_form(str(exc), 400)
        as_json = request.is_json
        if as_json:
            body = request.get_json(silent=True)
            body = body if isinstance(body, dict) else {}
        else:
            body = request.form
            if not _csrf_ok(body.get("csrf")):
                return _login_form("The form expired; please log in again.", 400)
        username, password = body.get("username"), body.get("password")
        try:
            next_url = _safe_next(body.get("next") if isinstance(body.get("next"), str | None) else "?")
        except BadNext as exc:
            if as_json:
                return jsonify({"error": str(exc)}), 400
            return _login_form(str(exc), 400)
        if not isinstance(username, str) or not isinstance(password, str) or len(password) > 1024:
            username, password = "", ""
        user = users.authenticate(username, password) if USERNAME_RE.fullmatch(username) else None
        if user is None:
            _audit(username if USERNAME_RE.fullmatch(username) else "(invalid name)", "login_failed")
            log.warning("failed login for %r from %s", username[:64], request.remote_addr)
            if as_json:
                return jsonify({"error": "wrong user name or password, or the account is disabled"}), 401
            return _login_form("Wrong user name or password, or the account is disabled.", 401, next_url)
        session.clear()  # no session fixation: a fresh session (and CSRF token) per login
        login_user(LoginUser(user))
        session["last_active"] = clock()
        _csrf()
        _audit(user.username, "login", role=user.role)
        if as_json:
            return jsonify({"user": user.username, "role": user.role})
        return redirect(next_url)

    @server.route("/logout", methods=["GET", "POST"])
    def logout() -> Any:
        if request.method == "GET":  # a confirmation form: logging out changes state
            return _page("Log out - Chairside", (
                f"<p>Logged in as {escape(str(current_user.id))}.</p>"
                "<form method='post' action='/logout'>"
                f"<input type='hidden' name='csrf' value='{escape(_csrf())}'>"
                "<button type='submit' class='btn'>Log out</button> <a href='/'>Back</a></form>"))
        if not request.is_json and not _csrf_ok(request.form.get("csrf")):
            abort(400, "the form expired")
        name = str(current_user.id)
        logout_user()
        session.clear()
        _audit(name, "logout", reason="user")
        if request.is_json:
            return jsonify({"logged_out": name})
        return redirect("/login")
