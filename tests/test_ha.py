"""Two ``chairside run`` of one bay with ``[ha] enabled`` and one PostgreSQL store (issue 16):
exactly one leads and serves the bay, the other answers 503 ``standby``; kill -9 of the
leader and the standby leads, with the open session restored, and says so in the audit
trail; a clean stop hands over at once. Real processes, real PostgreSQL, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import scaled, wait_until
from store_backends import Backend

from simulators.broker import free_port

ROOT = Path(__file__).resolve().parents[1]


def health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=scaled(2)) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


def role(port: int) -> str:
    return health(port)[1].get("role", "")


def post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=scaled(10)) as answer:
        return json.loads(answer.read())


def get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=scaled(10)) as answer:
        return json.loads(answer.read())


class Server:
    """One ``chairside run`` of the pair, stoppable by its pid."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port, self.log = port, log
        with log.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "station.cli", "run", "--config", str(config),
                                          "--port", str(port)], cwd=ROOT, stderr=err,
                                         env={**os.environ, "PYTHONPATH": str(ROOT)})

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(scaled(30))


def bay_toml(backend: Backend, folder: Path) -> Path:
    store = "\n".join(f"{k} = {json.dumps(str(v))}" for k, v in backend.section.items())
    config = folder / "bay.toml"
    config.write_text(f"""[bay]\nid = "neuro"\nname = "Neurology"\n[store]\n{store}\ncommit_interval_ms = 50
[ha]\nenabled = true\ncheck_s = 0.2\n[auth]\nenabled = false\n[dashboard]\nhost = "127.0.0.1"
[[chairs]]\nid = "c1"\n[[chairs]]\nid = "c2"\n""")
    return config


def test_one_leads_the_other_waits_and_takes_over_after_kill_9(pg_backend: Backend, tmp_path: Path) -> None:
    config = bay_toml(pg_backend, tmp_path)
    a = Server(config, free_port(), tmp_path / "a.log")
    b: Server | None = None
    try:
        wait_until(lambda: role(a.port) == "leader", 30, "the first server to lead")
        assert health(a.port)[0] == 200
        b = Server(config, free_port(), tmp_path / "b.log")
        wait_until(lambda: role(b.port) == "standby", 30, "the second to wait")
        assert health(b.port)[0] == 503
        session = post(a.port, "/api/v1/chairs/c1/sessions", {"user": "nurse.ann", "patient": "MRN-4",
                                                                "protocol": "magnesium"})
        wait_until(lambda: pg_backend.sql("SELECT id FROM sessions", bay="neuro") == [(session["id"],)],
                   10, "the session committed")
        assert a.kill() == -signal.SIGKILL
        wait_until(lambda: role(b.port) == "leader", 10, "the standby to lead after kill -9")
        chairs = {c["chair"]: c for c in get(b.port, "/api/v1/chairs")["chairs"]}
        assert chairs["c1"]["session"]["id"] == session["id"]  # restored from the database
        assert chairs["c1"]["session"]["patient"] == "MRN-4"
        gap = [x for x in chairs["c1"]["alarms"] if x["code"] == "MONITORING_INTERRUPTED"]
        assert len(gap) == 1 and "(server takeover)" in gap[0]["message"]  # the gap, on the chair
        taken = pg_backend.sql("SELECT action, detail FROM operator_actions WHERE action LIKE 'leadership%' "
                               "ORDER BY id", bay="neuro")
        wait_until(lambda: len(pg_backend.sql("SELECT id FROM operator_actions WHERE action = "
                                              "'leadership_taken'", bay="neuro")) == 2, 10)
        assert [t[0] for t in taken][:1] == ["leadership_taken"]
        assert b.kill(signal.SIGTERM) == 0  # a clean stop, recorded
        assert pg_backend.sql("SELECT action FROM operator_actions ORDER BY id DESC LIMIT 1",
                              bay="neuro") == [("leadership_released",)]
    finally:
        a.kill()
        if b is not None:
            b.kill()


def test_a_clean_stop_hands_over_at_once(pg_backend: Backend, tmp_path: Path) -> None:
    config = bay_toml(pg_backend, tmp_path)
    a = Server(config, free_port(), tmp_path / "a.log")
    b = Server(config, free_port(), tmp_path / "b.log")
    try:
        wait_until(lambda: {role(a.port), role(b.port)} == {"leader", "standby"}, 30,
                   "one leader, one standby")
        leader, standby = (a, b) if role(a.port) == "leader" else (b, a)
        assert leader.kill(signal.SIGTERM) == 0
        wait_until(lambda: role(standby.port) == "leader", 10, "the standby to lead")
    finally:
        a.kill()
        b.kill()


HAPROXY = "/usr/sbin/haproxy"
DEPLOY = ROOT / "deploy"


def self_signed(folder: Path) -> Path:
    """A certificate for 127.0.0.1 and its key in one PEM file, as HAProxy takes them."""
    crt, key = folder / "proxy.crt", folder / "proxy.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=scaled(60))
    pem = folder / "proxy.pem"
    pem.write_text(crt.read_text() + key.read_text())
    return crt


USER, PASSWORD = "ann", "Infusion-bay-7731"


def with_login(config: Path, folder: Path) -> Path:
    """``config`` with login on (the pair shares the secret key file) and the nurse USER in
    the shared store."""
    config.write_text(config.read_text().replace(
        "[auth]\nenabled = false", f'[auth]\nenabled = true\nsecret_key_file = "{folder / "secret"}"'))
    added = subprocess.run([sys.executable, "-m", "station.cli", "user", "add", "--config", str(config),
                            USER, "--role", "nurse", "--password-stdin"], input=f"{PASSWORD}\n",
                           text=True, cwd=ROOT, capture_output=True, timeout=scaled(60))
    assert added.returncode == 0, added.stderr
    return config


class Proxy:
    """deploy/haproxy-chairside.cfg as shipped in front of the pair (its ports, certificate and
    servers swapped for the test's): ``base`` is its https URL, ``crt`` its certificate."""

    def __init__(self, folder: Path, a: Server, b: Server) -> None:
        self.crt = self_signed(folder)
        self.https = free_port()
        site = (DEPLOY / "haproxy-chairside.cfg").read_text()
        swaps = {"    log /dev/log local0\n": "", "    log global\n": "", "    option httplog\n": "",
                 "bind :80": f"bind 127.0.0.1:{free_port()}", "bind :443": f"bind 127.0.0.1:{self.https}",
                 "/etc/ssl/chairside/chairside.pem": str(folder / "proxy.pem"),
                 "10.0.0.11:8050": f"127.0.0.1:{a.port}", "10.0.0.12:8050": f"127.0.0.1:{b.port}",
                 "\nglobal\n": f"\nglobal\n    stats socket {folder / 'haproxy.sock'} mode 600\n"}
        for old, new in swaps.items():
            assert old in site, old
            site = site.replace(old, new)
        self.folder, self.ports = folder, {a.port: "bay_a", b.port: "bay_b"}
        (folder / "haproxy.cfg").write_text(site)
        self.base = f"https://127.0.0.1:{self.https}"
        self.start()

    def start(self) -> None:
        with (self.folder / "haproxy.log").open("a") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.folder / "haproxy.cfg")],
                                         stdout=log, stderr=log)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(scaled(10))

    def check(self, server: Server) -> tuple[str, str, str]:
        """HAProxy's view of ``server`` (its stats socket): its status (UP, DOWN), the
        verdict of its last health check (L7OK, L7STS: not the answer expected) and the
        HTTP status that check got ("" before any)."""
        import csv
        import socket

        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(self.folder / "haproxy.sock"))
                sock.sendall(b"show stat\n")
                text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
        except OSError:
            return "", "", ""
        for row in csv.DictReader(text.lstrip("# ").splitlines()):
            if row["svname"] == self.ports[server.port]:
                return row["status"], row["check_status"], row["check_code"]
        return "", "", ""


def test_the_proxy_follows_the_leader_and_a_login_holds_across_a_takeover(pg_backend: Backend,
                                                                          tmp_path: Path) -> None:
    import http.cookiejar
    import ssl

    config = with_login(bay_toml(pg_backend, tmp_path), tmp_path)
    a = Server(config, free_port(), tmp_path / "a.log")
    b = Server(config, free_port(), tmp_path / "b.log")
    proxy = Proxy(tmp_path, a, b)
    crt, base = proxy.crt, proxy.base
    tls = ssl.create_default_context(cafile=str(crt))
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls),
                                          urllib.request.HTTPCookieProcessor(jar))

    def through_proxy(path: str) -> tuple[int, Any]:
        try:
            with browser.open(base + path, timeout=scaled(5)) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, None
        except OSError:
            return 0, None

    try:
        wait_until(lambda: through_proxy("/healthz")[0] == 200, 30, "the proxy reaching the leader")
        leader, standby = (a, b) if role(a.port) == "leader" else (b, a)
        login = urllib.request.Request(base + "/login", json.dumps({"username": USER,
                                       "password": PASSWORD}).encode(),
                                       {"Content-Type": "application/json"}, method="POST")
        with browser.open(login, timeout=scaled(10)) as answer:
            assert answer.status == 200
        assert through_proxy("/api/v1/chairs")[0] == 200
        assert leader.kill() == -signal.SIGKILL
        # the same browser, the same login: live again through the proxy, from the new leader
        wait_until(lambda: through_proxy("/api/v1/chairs")[0] == 200 and role(standby.port) == "leader",
                   15, "the bay back through the proxy with the same login")
    finally:
        proxy.stop()
        a.kill()
        b.kill()


def test_a_degraded_leader_keeps_the_bay_screen_behind_the_proxy(pg_backend: Backend, tmp_path: Path) -> None:
    """The leader whose broker is out of reach answers /healthz 503 ("degraded"): its screen
    shows that technical alarm and must stay reachable. The proxy routes by the role."""
    import ssl

    config = bay_toml(pg_backend, tmp_path)
    config.write_text(config.read_text() + f'[[sources]]\nkind = "mqtt"\nname = "mqtt"\nhost = "127.0.0.1"\n'
                                           f'port = {free_port()}\nbay = "neuro"\nreconnect_max_s = 1\n')
    a = Server(config, free_port(), tmp_path / "a.log")
    b = Server(config, free_port(), tmp_path / "b.log")
    proxy = Proxy(tmp_path, a, b)
    tls = ssl.create_default_context(cafile=str(proxy.crt))

    def chairs_through_proxy() -> int:
        try:
            url = proxy.base + "/api/v1/chairs"
            with urllib.request.urlopen(url, timeout=scaled(5), context=tls) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    try:
        wait_until(lambda: {role(a.port), role(b.port)} == {"leader", "standby"}, 30,
                   "one leader, one standby")
        leader, standby = (a, b) if role(a.port) == "leader" else (b, a)
        wait_until(lambda: health(leader.port)[0] == 503, 30, "the leader degraded: its broker out of reach")
        assert health(leader.port)[1]["status"] == "degraded"
        wait_until(lambda: proxy.check(leader)[2] == "503", 15, "a check of the proxy's seeing it degraded")
        assert proxy.check(leader) == ("UP", "L7OK", "503")  # it stays in, by its role
        # the standby answers, but not as the leader (L7RSP: the expected text missing)
        wait_until(lambda: proxy.check(standby)[:2] == ("DOWN", "L7RSP"), 15, "the standby out of the proxy")
        assert chairs_through_proxy() == 200
    finally:
        proxy.stop()
        a.kill()
        b.kill()
