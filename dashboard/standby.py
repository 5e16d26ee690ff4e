"""What a standby server answers while the other server of its bay leads (issue 16; see
docs/high-availability.md): ``/healthz`` 503 with ``"role": "standby"``, so the proxy in front
routes to the leader, and for anyone who reaches it directly a page saying so, which
reloads until this server leads. It holds no patient data, so it needs no login.
"""

from __future__ import annotations

import html
from typing import Any

from flask import Flask, Response, jsonify

__all__ = ["STANDBY_RELOAD_S", "create_standby_app"]

STANDBY_RELOAD_S = 2

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{reload}"><title>{name}: standby server</title>
<style>body{{background:#05080d;color:#e8eef5;font:24px/1.4 sans-serif;margin:3em}}</style></head>
<body><h1>{name}: standby server</h1><p>The other server of this bay leads and shows the bay.
This one takes over if it fails; this page reloads every {reload} s.</p></body></html>"""


def create_standby_app(bay: str, name: str) -> Flask:
    app = Flask("chairside-standby")
    page = _PAGE.format(name=html.escape(name), reload=STANDBY_RELOAD_S)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "standby", "role": "standby", "bay": bay}), 503

    @app.route("/", defaults={"path": ""})
    @app.route("/<path:path>")
    def standby(path: str) -> Response:
        return Response(page, status=503, mimetype="text/html", headers={
            "Retry-After": str(STANDBY_RELOAD_S), "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    return app
