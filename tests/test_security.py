"""Safe defaults: loopback-only binding while there is no login, security headers, bounded
request bodies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from dashboard.api import install_api
from dashboard.live import LiveBay
from dashboard.security import BindRefused, check_bind
from dashboard.server import WebServer


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses_are_allowed(host):
    check_bind(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_other_addresses_are_refused_without_login(host):
    with pytest.raises(BindRefused, match="authentication is disabled"):
        check_bind(host)
    with pytest.raises(BindRefused):
        WebServer(Flask("x"), host=host, port=0)


def test_the_command_line_refuses_a_public_bind_with_a_reason():
    proc = subprocess.run([sys.executable, "-m", "station.cli", "demo", "--host", "0.0.0.0",
                           "--seconds", "1"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent.parent)
    assert proc.returncode == 2
    assert "refusing to serve the dashboard on '0.0.0.0'" in proc.stderr


def test_pages_and_answers_carry_security_headers(harness):
    from dashboard.app import create_app

    app = create_app(LiveBay(harness.monitor))
    client = app.server.test_client()
    page = client.get("/")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "'unsafe-eval'" not in csp and "object-src 'none'" in csp
    api = client.get("/api/v1/chairs")
    for answer in (page, api):
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert api.headers["Cache-Control"] == "no-store"  # patient data is never cached
    assert app.server.debug is False


def test_request_bodies_are_bounded(harness):
    from dashboard.app import create_app

    client = create_app(LiveBay(harness.monitor)).server.test_client()
    big = b'{"user": "' + b"x" * (2 << 20) + b'"}'
    answer = client.post("/api/v1/alarms/1/acknowledge", data=big, content_type="application/json")
    assert answer.status_code == 413 and "error" in answer.get_json()


def test_api_alone_is_json_for_oversized_bodies_too(harness):
    app = Flask("t")
    install_api(app, LiveBay(harness.monitor))
    answer = app.test_client().post("/api/v1/chairs/c1/pause-audio", data=b"{" * 20000,
                                    content_type="application/json")
    assert answer.status_code == 413
