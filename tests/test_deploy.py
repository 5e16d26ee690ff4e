"""The deploy kit as shipped: the systemd unit (checked by systemd's own systemd-analyze, and
its command lines by Chairside's own argument parser) and the nginx TLS proxy example (a real
nginx, started by the test on free loopback ports, in front of a real Chairside server)."""

from __future__ import annotations

import json
import shlex
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, wait_until
from test_mqtt import make_certs

from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.server import WebServer
from simulators.broker import free_port
from station.cli import build_parser

DEPLOY = Path(__file__).parent.parent / "deploy"
NGINX = "/usr/sbin/nginx"


def unit_lines(key: str) -> list[str]:
    text = (DEPLOY / "chairside.service").read_text("utf-8")
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def test_the_systemd_unit_is_valid_and_hardened(tmp_path):
    text = (DEPLOY / "chairside.service").read_text("utf-8")
    # systemd-analyze needs the binaries to exist: point them at this checkout's venv
    chairside = Path(sys.executable).parent / "chairside"
    unit = tmp_path / "chairside.service"
    unit.write_text(text.replace("/opt/chairside/.venv/bin/chairside", str(chairside)), "utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "Unknown" not in done.stderr and "Failed" not in done.stderr, \
        done.stderr
    for key, value in {"User": "chairside", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ReadWritePaths": "/var/lib/chairside", "UMask": "0077", "PrivateTmp": "yes",
                       "CapabilityBoundingSet": "", "KillSignal": "SIGTERM"}.items():
        assert unit_lines(key) == [value], key


@pytest.mark.parametrize("key", ["ExecStart", "ExecStartPre"])
def test_the_units_commands_are_chairside_commands(key):
    (line,) = unit_lines(key)
    program, *args = shlex.split(line)
    assert program.endswith("/bin/chairside")
    parsed = build_parser().parse_args(args)  # SystemExit (exit 2) on anything it does not know
    assert parsed.command in ("run", "check-config")


@pytest.fixture
def proxied(tmp_path: Path, harness: Harness) -> Iterator[tuple[str, int, Path]]:
    """deploy/nginx-chairside.conf as shipped, with ports, certificate paths and the upstream
    swapped for the test's, in front of a Chairside server on loopback."""
    certs = make_certs(tmp_path / "certs")
    server = WebServer(create_app(LiveBay(harness.monitor)).server, port=0)
    server.start()
    http_port, https_port = free_port(), free_port()
    site = (DEPLOY / "nginx-chairside.conf").read_text("utf-8")
    swaps = {"server 127.0.0.1:8050;": f"server 127.0.0.1:{server.port};",
             "listen 80;": f"listen 127.0.0.1:{http_port};",
             "listen [::]:80;": "",
             "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
             "listen [::]:443 ssl http2;": "",
             "/etc/ssl/chairside/fullchain.pem": str(certs["broker.crt"]),
             "/etc/ssl/chairside/privkey.pem": str(certs["broker.key"])}
    for old, new in swaps.items():
        assert old in site, old
        site = site.replace(old, new)
    run = tmp_path / "nginx"
    run.mkdir()
    conf = run / "nginx.conf"
    conf.write_text(f"""daemon off;
user root;
pid {run}/nginx.pid;
error_log {run}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {run}/access.log;
    client_body_temp_path {run}/body; proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fcgi; uwsgi_temp_path {run}/uwsgi; scgi_temp_path {run}/scgi;
{site}
}}
""", "utf-8")
    checked = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(run)], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(run)], stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
            except OSError:
                return proc.poll() is not None  # (exited: the assertion below says why)
            return True

        wait_until(up, 20, "nginx listening")
        assert proc.poll() is None, (run / "error.log").read_text("utf-8", errors="replace")
        yield f"https://127.0.0.1:{https_port}", http_port, certs["ca.crt"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        server.stop()


def test_the_nginx_example_serves_chairside_over_tls_only(proxied):
    url, http_port, ca = proxied
    tls = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(f"{url}/healthz", context=tls, timeout=10) as answer:
        assert answer.status == 200 and b'"status"' in answer.read()
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    with urllib.request.urlopen(f"{url}/", context=tls, timeout=10) as page:
        assert page.status == 200 and b"Chairside" in page.read()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.build_opener(NoRedirect).open(f"http://127.0.0.1:{http_port}/healthz", timeout=10)
    plain.value.close()  # (an HTTPError holds its response open)
    assert plain.value.code == 301 and plain.value.headers["Location"].startswith("https://")
    big = urllib.request.Request(f"{url}/api/v1/chairs/c1/pause-audio", data=b"x" * (2 << 20),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(big, context=tls, timeout=10)
    refused.value.close()
    assert refused.value.code == 413


def test_the_push_stream_passes_through_nginx_as_it_happens(proxied, harness):
    """The bay screens' Server-Sent Events reach the browser through the proxy one by one (a
    buffering proxy would hold them back until its buffer filled)."""
    url, _, ca = proxied
    tls = ssl.create_default_context(cafile=str(ca))

    def events(answer: Any) -> Iterator[dict[str, Any]]:
        for line in answer:
            if line.startswith(b"data: "):
                yield json.loads(line[6:])

    with urllib.request.urlopen(f"{url}/live/stream?tab={'c' * 32}", context=tls, timeout=20) as answer:
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        stream = events(answer)
        assert "c1|hr" in next(stream)  # the whole bay first
        harness.monitor.ingest([harness.reading("hr", 75)])
        assert any(e.get("c1|hr") == "75" for e, _ in zip(stream, range(30), strict=False))
