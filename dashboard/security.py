"""Safe defaults for the web side: what may be served where, and the headers every page and
answer carries.

- Without login (``[auth] enabled = false``) the server binds loopback only
  (``BindRefused`` otherwise); with login (the default) it may bind any address the
  configuration names. The default address is 127.0.0.1 either way.
- A Content-Security-Policy the Dash app works under: scripts only from this server plus
  the hashes of Dash's own inline scripts (``Dash.csp_hashes``); no framing (clickjacking);
  no MIME sniffing; no referrer; request bodies bounded.
- No input gives a 500: JSON bodies are parsed to at most ``MAX_JSON_DEPTH`` levels (deeper
  is 400, not a ``RecursionError``); a Dash callback request must be well formed, name a
  callback the app has, and a chair the bay has (400/404 ``{"error": ...}`` otherwise).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider

from dashboard.errors import DashboardError

if TYPE_CHECKING:  # the command line imports this module; it need not load Dash for it
    import dash

__all__ = ["MAX_JSON_DEPTH", "MAX_REQUEST_BYTES", "BindRefused", "DepthLimitedJSON", "check_bind",
           "install_security", "json_depth", "limit_json"]

MAX_REQUEST_BYTES = 1 << 20  # a Dash callback or API request is a few KiB
MAX_JSON_DEPTH = 64  # a Dash callback body nests about 10 levels (figures and layouts it sends back)
DASH_UPDATE = "/_dash-update-component"
CHAIR_STORE = "chair-id"  # the chair page's store of its chair (a State of its callbacks)


class BindRefused(DashboardError, ValueError):
    """A bind address the dashboard must not be served on."""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(host: str, *, auth_enabled: bool = False) -> None:
    if not auth_enabled and not _loopback(host):
        raise BindRefused(
            f"refusing to serve the dashboard on {host!r}: authentication is disabled "
            "([auth] enabled = false), so it binds loopback only (127.0.0.1). Enable [auth] "
            "to serve other screens (and put TLS in front, with [auth] secure_cookies = true).")


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar: 0); iterative."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((v, depth) for v in item if isinstance(v, dict | list))
    return deepest


class DepthLimitedJSON(DefaultJSONProvider):
    """Flask's JSON, refusing (``ValueError``, so ``get_json`` answers 400 or, silent, None)
    a document nested deeper than ``MAX_JSON_DEPTH`` instead of raising ``RecursionError``."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        too_deep = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError(too_deep) from None
        # nesting needs brackets: a body with few of them cannot be too deep (no walk needed)
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        brackets = text.count("[") + text.count("{")
        if brackets > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
            raise ValueError(too_deep)
        return value


def limit_json(server: Flask) -> None:
    """Parse request JSON with :class:`DepthLimitedJSON` (idempotent)."""
    if not isinstance(server.json, DepthLimitedJSON):
        server.json = DepthLimitedJSON(server)


def _error(status: int, message: str) -> Response:
    answer = jsonify({"error": message})
    answer.status_code = status
    return answer


def _entries(items: Any, where: str) -> list[dict[str, Any]]:
    """The flat list of a callback body's inputs or state (a wildcard's are a list of their
    own); ValueError naming what is malformed."""
    if not isinstance(items, list):
        raise ValueError(f"{where} must be a list")
    flat: list[dict[str, Any]] = []
    for item in items:
        for entry in item if isinstance(item, list) else [item]:
            if not (isinstance(entry, dict) and isinstance(entry.get("id"), str | dict)
                    and isinstance(entry.get("property"), str)):
                raise ValueError(f"each of {where} must be an object with an \"id\" and a \"property\"")
            flat.append(entry)
    return flat


def _check_callback(app: dash.Dash, body: Any) -> Response | None:
    """A 400/404 answer for a callback request Dash would fail on (a 500), else None."""
    if not isinstance(body, dict):
        return _error(400, "a callback request is a JSON object")
    output = body.get("output")
    spec = app.callback_map.get(output) if isinstance(output, str) else None
    if spec is None:
        return _error(400, f"no callback for output {str(output)[:200]!r}")
    try:
        inputs, state = body.get("inputs", []), body.get("state", [])
        for key, sent in (("inputs", inputs), ("state", state)):
            _entries(sent, key)
            if len(sent) != len(spec[key]):
                raise ValueError(f"{key} must have {len(spec[key])} entries for this callback, "
                                 f"not {len(sent)}")
        outputs = body.get("outputs", [])
        _entries(outputs if isinstance(outputs, list) else [outputs], "outputs")
        changed = body.get("changedPropIds", [])
        if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
            raise ValueError("changedPropIds must be a list of strings")
    except ValueError as exc:
        return _error(400, str(exc))
    from dashboard.pages import LIVE_KEY

    live = current_app.config.get(LIVE_KEY)
    if live is not None:
        chairs = {c.id for c in live.config.chairs}
        for entry in _entries(inputs, "inputs") + _entries(state, "state"):
            value = entry.get("value")
            if entry["id"] == CHAIR_STORE and not (isinstance(value, str) and value in chairs):
                return _error(404, f"no chair {str(entry.get('value'))[:64]!r} in this bay")
    return None


def _guard_callbacks(app: dash.Dash) -> None:
    """Check each callback request before Dash runs it (after the login gate: a caller
    without a session learns nothing from the checks)."""
    server = app.server
    endpoint = app.config.routes_pathname_prefix + DASH_UPDATE.lstrip("/")
    dispatch: Callable[..., Any] = server.view_functions[endpoint]

    @functools.wraps(dispatch)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not request.is_json:
            return _error(400, "a callback request is JSON (Content-Type: application/json)")
        try:
            body = current_app.json.loads(request.get_data(cache=True))
        except ValueError as exc:  # (Dash parses it again: it is small)
            return _error(400, f"the body is not usable JSON: {exc}")
        refused = _check_callback(app, body)
        return refused if refused is not None else dispatch(*args, **kwargs)

    server.view_functions[endpoint] = checked


def install_security(app: dash.Dash) -> None:
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    limit_json(server)
    _guard_callbacks(app)

    @server.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html":
            # computed per page load: Dash attaches page callbacks (and their inline
            # clientside scripts) when the app first serves, so hashes may change once
            scripts = " ".join(["'self'", *app.csp_hashes()])
            response.headers["Content-Security-Policy"] = (
                f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
                "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")
        return response
