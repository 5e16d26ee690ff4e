"""The pages of the login flow and the checks of what a login form sends: the bay-styled page
(:func:`page`) and login form, the per-session CSRF token, where a login may send the user
(:func:`safe_next`; :class:`BadNext` otherwise), and a login refused before its check
(:func:`refused`: 429 throttled, 503 busy)."""

from __future__ import annotations

import hmac
import re
import secrets
from html import escape
from urllib.parse import urlsplit

from flask import Response, jsonify, session
from werkzeug.urls import iri_to_uri

from dashboard.auth_access import auth_state
from dashboard.errors import DashboardError

__all__ = ["BAD_NEXT", "BadNext", "csrf_ok", "csrf_token", "login_form", "page", "refused", "safe_next"]


def csrf_token() -> str:
    """The session's CSRF token for a form (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(sent: str | None) -> bool:
    """Whether a form sent the session's CSRF token."""
    token = session.get("csrf")
    return isinstance(token, str) and isinstance(sent, str) and hmac.compare_digest(token, sent)


def page(title: str, body: str, status: int = 200) -> Response:
    """A page of the login flow, in the bay's look: its header with the bay's name and the
    not-a-medical-device notice, then a card headed by the title's first part."""
    from dashboard.app import NOTICE  # (dashboard.app imports this one, through dashboard.auth)

    state = auth_state()
    bay = state.live.config.bay.name if state is not None else ""
    html = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
            "</title><meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='stylesheet' href='/assets/chairside.css'></head><body class='login-page'>"
            "<header class='hdr'><div class='hdr-left'><span class='brand'>Chairside</span>"
            f"<span class='bay-name'>{escape(bay)}</span></div>"
            f"<div class='notice'>{escape(NOTICE)}</div></header>"
            f"<main class='login card'><h1>{escape(title.split(' - ')[0])}</h1>{body}</main></body></html>")
    return Response(html, status=status, mimetype="text/html")


def login_form(error: str = "", status: int = 200, next_url: str = "/") -> Response:
    """The login form (with ``error`` above it); it sends the user to ``next_url``."""
    msg = f"<p class='login-error' role='alert'>{escape(error)}</p>" if error else ""
    return page("Log in - Chairside", (
        f"{msg}<form method='post' action='/login' class='login-form'>"
        f"<input type='hidden' name='csrf' value='{escape(csrf_token())}'>"
        f"<input type='hidden' name='next' value='{escape(next_url)}'>"
        "<label>User <input name='username' autocomplete='username' required autofocus></label>"
        "<label>Password <input name='password' type='password' autocomplete='current-password' "
        "required></label><button type='submit' class='btn'>Log in</button></form>"), status)


class BadNext(DashboardError, ValueError):
    """A login's ``next`` that is not a path on this server."""


_LOCAL_PATH = re.compile(r"/(?![/\\])[^\x00-\x20\x7f-\x9f\\]{0,2000}")
BAD_NEXT = "next must be a path on this server (like /alarms); after logging in you see the bay"


def safe_next(url: str | None) -> str:
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


def refused(status: int, message: str, retry_s: int, as_json: bool, next_url: str) -> Response:
    """A login attempt refused before its password is checked (429 throttled, 503 busy)."""
    if as_json:
        answer = jsonify({"error": message, "retry_after_s": retry_s})
        answer.status_code = status
    else:
        answer = login_form(message, status, next_url)
    answer.headers["Retry-After"] = str(retry_s)
    return answer
