"""Safe defaults for the web side: what may be served where, and the headers every page and
answer carries.

- Without login (``[auth] enabled = false``) the server binds loopback only
  (``BindRefused`` otherwise); with login (the default) it may bind any address the
  configuration names. The default address is 127.0.0.1 either way.
- A Content-Security-Policy the Dash app works under: scripts only from this server plus
  the hashes of Dash's own inline scripts (``Dash.csp_hashes``); no framing (clickjacking);
  no MIME sniffing; no referrer; request bodies bounded.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

from flask import Response

if TYPE_CHECKING:  # the command line imports this module; it need not load Dash for it
    import dash

__all__ = ["MAX_REQUEST_BYTES", "BindRefused", "check_bind", "install_security"]

MAX_REQUEST_BYTES = 1 << 20  # a Dash callback or API request is a few KiB


class BindRefused(ValueError):
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


def install_security(app: dash.Dash) -> None:
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

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
