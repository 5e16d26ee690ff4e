"""Issue 12 point 3: the HL7 listener is as protected as the rest. Each test performs the
attack on real sockets: real TLS (a throw-away CA made with openssl), real peers on
127.0.0.1 and 127.0.0.2, a real core on a real SQLite file."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, scaled, wait_until

from devices.hl7_listener import Hl7Listener
from devices.mllp_tls import PeerPolicy, describe_subject
from monitor.config import ConfigError, Hl7Source, load_config
from monitor.seam import SourceState
from simulators.emitters import MllpEmitter
from simulators.formats import oru_r01
from simulators.mllp_client import MllpClient, client_context
from simulators.runner import Endpoints
from wire.hl7.ack import read_ack
from wire.hl7.mllp import frame

HOST = "127.0.0.1"
BED = "BAY1^^c1"  # the simulated gateway's PV1-3 for chair c1


def make_certs(folder: Path) -> dict[str, Path]:
    """A throw-away CA; the listener's certificate (for 127.0.0.1); gateway-1 and gateway-2
    client certificates; and an intruder's certificate saying CN=gateway-1 from another CA."""
    folder.mkdir(parents=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=30)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                "-subj", f"/CN=test-{ca}")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn, ca in (("listener", "chairside-hl7", "ca"), ("gateway-1", "gateway-1", "ca"),
                         ("gateway-2", "gateway-2", "ca"), ("intruder", "gateway-1", "other-ca")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={cn}/O=Test Hospital")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                *(["-extfile", "san.ext"] if name == "listener" else []))
    return {p.stem + p.suffix: p for p in folder.iterdir()}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certs(tmp_path_factory.mktemp("hl7-tls") / "certs")


@pytest.fixture
def bay(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path, chairs=4)
    yield h
    h.monitor.close()


@pytest.fixture
def start_listener(bay: Harness, certs: dict[str, Path]) -> Iterator[Callable[..., Hl7Listener]]:
    started: list[Hl7Listener] = []

    def start(tls: bool = True, client_certs: bool = True, max_connections: int = 64,
              **options: Any) -> Hl7Listener:
        kw: dict[str, Any] = {"beds": {BED: "c1"}}
        if tls:
            kw |= {"tls_cert": certs["listener.crt"], "tls_key": certs["listener.key"]}
        if tls and client_certs:
            kw["tls_client_ca"] = certs["ca.crt"]
        config = Hl7Source(kind="hl7", name="gw", host=HOST, port=0, **(kw | options))
        listener = Hl7Listener(config, bay.monitor, max_connections=max_connections)
        listener.start()
        started.append(listener)
        assert listener.state is SourceState.CONNECTED, listener.last_error
        return listener

    yield start
    for listener in started:
        listener.stop()


def gateway(listener: Hl7Listener, certs: dict[str, Path], who: str | None = "gateway-1",
            timeout: float = 5.0) -> MllpClient:
    """A TLS gateway presenting ``who``'s certificate (None: no client certificate)."""
    ctx = client_context(certs["ca.crt"], *((certs[f"{who}.crt"], certs[f"{who}.key"]) if who else ()))
    assert listener.port is not None
    return MllpClient(HOST, listener.port, timeout, ssl_context=ctx)


def message(bay: Harness, spo2: float, *, ahead_s: float = 0.0, control: str = "M1") -> str:
    return oru_r01({"spo2": spo2}, 0, bay.clock.now() + ahead_s, control_id=control, bed=BED,
                   device="0011223344556677")


def spo2_stored(bay: Harness) -> list[float | None]:
    assert bay.monitor.store is not None
    bay.flush()
    return [r.value for r in bay.monitor.store.iter_readings("c1", 0, None) if r.parameter == "spo2"]


def read_all(sock: socket.socket) -> bytes:
    """Everything the listener sends until it closes the connection (a reset counts as closed)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


# --- the real gateway ---------------------------------------------------------------------


def test_gateway_with_its_client_certificate_is_served_over_tls(
        bay: Harness, certs: dict[str, Path], start_listener: Callable[..., Hl7Listener],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chairside.devices.hl7")
    listener = start_listener(allow=["127.0.0.1", "CN=gateway-1,O=Test Hospital"])
    with gateway(listener, certs) as gw:
        assert isinstance(gw.sock, ssl.SSLSocket) and gw.sock.version() in ("TLSv1.2", "TLSv1.3")
        ack = read_ack(gw.send(message(bay, 97)))
    assert ack.code == "AA"
    assert spo2_stored(bay) == [97]
    health = listener.health()
    assert (health["tls"], health["client_certificates"]) == (True, True)
    assert listener.rejected.total() == 0
    assert any("CN=gateway-1,O=Test Hospital" in r.getMessage() for r in caplog.records)


def test_simulated_gateway_speaks_tls_with_a_client_certificate(
        bay: Harness, certs: dict[str, Path], start_listener: Callable[..., Hl7Listener],
        tmp_path: Path) -> None:
    listener = start_listener(allow=["CN=gateway-2"])
    assert listener.port is not None
    endpoints = Endpoints(tmp_path / "serial", hl7_port=listener.port,
                          hl7_tls_ca=certs["ca.crt"], hl7_tls_cert=certs["gateway-2.crt"],
                          hl7_tls_key=certs["gateway-2.key"])
    emitter = MllpEmitter(HOST, listener.port, bed=BED, device="SIMGW",
                          ssl_context=endpoints.hl7_ssl_context())
    emitter.open()
    try:
        emitter.emit({"spo2": 96.0, "hr": 70.0}, 0, bay.clock.now(), 1)
    finally:
        emitter.close()
    assert emitter.failures == 0
    assert spo2_stored(bay) == [96]


# --- the attacks ------------------------------------------------------------------------------


def test_unauthenticated_plain_peer_gets_no_ack_and_nothing_is_stored(
        bay: Harness, certs: dict[str, Path], start_listener: Callable[..., Hl7Listener]) -> None:
    """The assessor's attack: a peer without credentials sends one plain MLLP frame (SpO2 77
    stamped +290 s on the bed of c1) while the real gateway sends 97. Before: answered AA and
    shown on the tile. Now: the TLS handshake fails, no ACK, nothing stored, counted."""
    listener = start_listener()
    with socket.create_connection((HOST, listener.port or 0), timeout=5) as attacker:
        attacker.sendall(frame(message(bay, 77, ahead_s=290, control="EVIL")))
        answer = read_all(attacker)
    assert b"MSA" not in answer  # at most a TLS alert, never an ACK
    with gateway(listener, certs) as gw:
        assert read_ack(gw.send(message(bay, 97))).code == "AA"
    assert spo2_stored(bay) == [97]
    assert bay.monitor.status("c1").vitals["spo2"].value == 97
    assert listener.rejected.counts["tls_handshake"] == 1
    assert listener.messages == 1


@pytest.mark.parametrize("who", [None, "intruder"], ids=["no-certificate", "certificate-of-another-ca"])
def test_gateway_without_a_valid_client_certificate_is_refused(
        bay: Harness, certs: dict[str, Path], start_listener: Callable[..., Hl7Listener],
        who: str | None) -> None:
    """Client certificates required: a TLS peer without one, or with one from another CA
    (even naming an allowed subject, CN=gateway-1), is refused at the handshake."""
    listener = start_listener(allow=["CN=gateway-1"])
    with gateway(listener, certs, who) as peer, pytest.raises(OSError):  # ssl.SSLError, reset or EOF
        peer.send(message(bay, 77, control="EVIL"))
    wait_until(lambda: listener.rejected.counts["tls_handshake"] == 1, what="the refusal counted")
    details = [r.detail for r in listener.rejected.recent]
    assert any("TLS handshake failed" in d and d.startswith(HOST) for d in details)
    assert listener.messages == 0 and spo2_stored(bay) == []


def test_certificate_subject_outside_the_allow_list_is_refused_and_counted(
        bay: Harness, certs: dict[str, Path], start_listener: Callable[..., Hl7Listener],
        caplog: pytest.LogCaptureFixture) -> None:
    listener = start_listener(allow=["CN=gateway-1"])
    with gateway(listener, certs, "gateway-2") as other, pytest.raises(OSError):
        other.send(message(bay, 77, control="EVIL"))
    wait_until(lambda: listener.rejected.counts["peer_not_allowed"] == 1, what="the refusal counted")
    assert any("certificate subject 'CN=gateway-2,O=Test Hospital' not in allow" in r.detail
               for r in listener.rejected.recent)
    assert any("peer_not_allowed" in r.getMessage() and "CN=gateway-2" in r.getMessage()
               for r in caplog.records)
    with gateway(listener, certs, "gateway-1") as allowed:
        assert read_ack(allowed.send(message(bay, 97))).code == "AA"
    assert listener.messages == 1 and spo2_stored(bay) == [97]


def test_address_outside_the_allow_list_is_refused_and_counted(
        bay: Harness, start_listener: Callable[..., Hl7Listener]) -> None:
    """A peer from 127.0.0.2 on a listener that allows 127.0.0.1 only: closed at once, before
    a byte of it is read, counted; the allowed address is served."""
    listener = start_listener(tls=False, allow=["127.0.0.1/32"])
    with socket.create_connection((HOST, listener.port or 0), timeout=5,
                                  source_address=("127.0.0.2", 0)) as outsider:
        with contextlib.suppress(OSError):  # the listener may have closed it already
            outsider.sendall(frame(message(bay, 77, control="EVIL")))
        assert b"MSA" not in read_all(outsider)
    assert listener.rejected.counts["peer_not_allowed"] == 1
    assert any(r.detail.startswith("127.0.0.2:") and "address not in allow" in r.detail
               for r in listener.rejected.recent)
    assert listener.connections_total == 0 and listener.messages == 0
    with MllpClient(HOST, listener.port or 0, 5) as inside:
        assert read_ack(inside.send(message(bay, 97))).code == "AA"
    assert spo2_stored(bay) == [97]
    assert ('chairside_frames_rejected_total{kind="hl7",reason="peer_not_allowed",source="gw"} 1.0'
            in metrics(bay, listener))


def metrics(bay: Harness, listener: Hl7Listener) -> str:
    """GET /metrics through the API's Flask app, as a monitoring system reads it."""
    from flask import Flask

    from dashboard.api import install_api
    from dashboard.live import LiveBay

    app = Flask("test")
    install_api(app, LiveBay(bay.monitor, [listener], max_age=0))
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_address_and_subject_entries_must_both_match(
        bay: Harness, certs: dict[str, Path], start_listener: Callable[..., Hl7Listener]) -> None:
    """allow = [a network, a subject]: gateway-1's certificate from an address outside the
    network is refused (a stolen certificate is not enough)."""
    listener = start_listener(allow=["10.1.2.0/24", "CN=gateway-1"])
    ctx = client_context(certs["ca.crt"], certs["gateway-1.crt"], certs["gateway-1.key"])
    with pytest.raises(OSError), socket.create_connection((HOST, listener.port or 0), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST) as tls:  # one connection: refused before TLS
        tls.sendall(frame(message(bay, 77, control="EVIL")))
        assert b"MSA" not in read_all(tls)
    assert listener.rejected.counts["peer_not_allowed"] == 1
    assert spo2_stored(bay) == []


# --- the frame deadline and stopping, over TLS ------------------------------------------------


def test_frame_deadline_holds_over_tls(
        bay: Harness, certs: dict[str, Path], start_listener: Callable[..., Hl7Listener]) -> None:
    """Every slot taken: one peer opens TCP and never begins the handshake, one does the
    handshake and trickles a frame a byte at a time. Both are closed at the frame deadline
    (idle timeout 300 s), and the real gateway is served."""
    listener = start_listener(max_connections=2, frame_deadline_s=0.5)
    silent = socket.create_connection((HOST, listener.port or 0), timeout=5)
    trickler = gateway(listener, certs)
    wait_until(lambda: listener.health()["connections"] == 2, what="every slot taken")
    done = threading.Event()

    def trickle() -> None:
        with contextlib.suppress(OSError):
            trickler.send_raw(b"\x0bMSH|^~\\&|SLOWLORIS|")
            while not done.is_set():
                trickler.send_raw(b"x")
                done.wait(0.05)  # the trickle's pace, not a wait for the test

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        wait_until(lambda: listener.rejected.counts["tls_handshake"] == 1
                   and listener.rejected.counts["frame_deadline"] == 1, what="both deadlines")
        thread.join(10)
        assert not thread.is_alive()
        assert read_all(silent) == b""
        wait_until(lambda: listener.health()["connections"] == 0, what="the slots freed")
        with gateway(listener, certs) as gw:
            assert read_ack(gw.send(message(bay, 97))).code == "AA"
    finally:
        done.set()
        silent.close()
        trickler.close()
    assert any("TLS handshake not complete within 0.5 s" in r.detail for r in listener.rejected.recent)
    assert listener.health()["idle_timeouts"] == 0
    assert spo2_stored(bay) == [97]


def test_stop_with_tls_peers_connected_is_prompt(
        certs: dict[str, Path], start_listener: Callable[..., Hl7Listener]) -> None:
    listener = start_listener()
    mid_handshake = socket.create_connection((HOST, listener.port or 0), timeout=5)
    idle = gateway(listener, certs)
    idle.send_raw(b"\x0bMSH|^~\\&|half a message")
    wait_until(lambda: listener.health()["connections"] == 2, what="2 connections")
    began = time.monotonic()
    listener.stop()
    assert time.monotonic() - began < scaled(2)  # a deadline, stretched on a loaded machine
    assert listener.state is SourceState.STOPPED and listener.health()["connections"] == 0
    mid_handshake.close()
    idle.close()


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(("lines", "problem"), [
    ('host = "0.0.0.0"', "sources[0].hl7: host '0.0.0.0' is not a loopback address: set tls_cert"),
    ('host = "10.1.2.3"\ntls_cert = "hl7.pem"',
     "sources[0].hl7: host '10.1.2.3' is not a loopback address: say who may send, with tls_client_ca"),
    ('host = "0.0.0.0"\ninsecure_plain = true', "say who may send"),
    ('host = "0.0.0.0"\ninsecure_plain = true\nallow = ["CN=gw"]', "allow: a certificate subject ('CN=gw') "
                                                                   "needs tls_client_ca"),
    ('tls_client_ca = "ca.crt"', "sources[0].hl7: tls_client_ca needs tls_cert"),
    ('tls_key = "hl7.key"', "sources[0].hl7: tls_key needs tls_cert"),
    ('allow = ["10.1.2.0/33"]', "sources[0].hl7.allow: '10.1.2.0/33' is neither an address"),
    ('allow = ["10.1.2.1/24"]', "has host bits set"),
    ('allow = ["CN=gw,XX=1"]', "sources[0].hl7.allow: 'CN=gw,XX=1': 'XX=1' is not ATTRIBUTE=value"),
    ('tls_min_version = "1.0"', "sources[0].hl7.tls_min_version: Input should be '1.2' or '1.3'"),
])
def test_transport_security_configuration_is_validated(tmp_path: Path, lines: str, problem: str) -> None:
    path = tmp_path / "bay.toml"
    path.write_text(f'[[chairs]]\nid = "c1"\n[[sources]]\nkind = "hl7"\nname = "gw"\n{lines}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert problem in str(info.value) and str(info.value).startswith(f"{path}: sources[0].hl7")


@pytest.mark.parametrize("lines", [
    'host = "0.0.0.0"\ntls_cert = "tls/hl7.pem"\ntls_key = "tls/hl7.key"\ntls_client_ca = "tls/ca.crt"',
    'host = "0.0.0.0"\ntls_cert = "tls/hl7.pem"\nallow = ["10.1.2.0/24", "fd00::/8"]',
    'host = "10.1.2.3"\ninsecure_plain = true\nallow = ["10.1.2.7"]',
    'host = "::1"',
])
def test_secured_or_loopback_listeners_load(tmp_path: Path, lines: str) -> None:
    path = tmp_path / "bay.toml"
    path.write_text(f'[[chairs]]\nid = "c1"\n[[sources]]\nkind = "hl7"\nname = "gw"\n{lines}\n')
    src = load_config(path).sources[0]
    assert isinstance(src, Hl7Source)
    if src.tls_cert is not None:  # relative to the configuration file's folder
        assert src.tls_cert == tmp_path / "tls" / "hl7.pem"


@pytest.mark.parametrize("key", ["tls_cert", "tls_client_ca"])
def test_unusable_tls_files_fail_the_listener_at_start(
        bay: Harness, certs: dict[str, Path], tmp_path: Path, key: str) -> None:
    files = {"tls_cert": certs["listener.crt"], "tls_key": certs["listener.key"],
             "tls_client_ca": certs["ca.crt"]} | {key: tmp_path / "missing.pem"}
    listener = Hl7Listener(Hl7Source(kind="hl7", name="gw", port=0, **files), bay.monitor)
    listener.start()
    assert listener.state is SourceState.FAILED
    assert f"{key} {tmp_path / 'missing.pem'}" in (listener.last_error or "")
    listener.stop()


def test_peer_policy_matches_addresses_and_subjects() -> None:
    config = Hl7Source(kind="hl7", name="gw", tls_cert=Path("x"), tls_client_ca=Path("y"),
                       allow=["10.1.2.0/24", "fd00::/8", "CN=gw-1,O=H"])
    policy = PeerPolicy.from_config(config)
    assert policy.address_allowed("10.1.2.7") and policy.address_allowed("::ffff:10.1.2.7")
    assert policy.address_allowed("fd00::1%eth0")
    assert not policy.address_allowed("10.1.3.7") and not policy.address_allowed("not-an-ip")
    cert = {"subject": ((("commonName", "gw-1"),), (("organizationName", "H"),))}
    assert describe_subject(cert) == "CN=gw-1,O=H"
    assert policy.subject_allowed(cert)
    assert not policy.subject_allowed({"subject": ((("commonName", "gw-1"),),)})  # O missing
    assert not policy.subject_allowed(None)
    assert PeerPolicy().address_allowed("192.0.2.1") and PeerPolicy().subject_allowed(None)


# --- the commands: chairside run with a TLS listener, chairside simulate as its gateway ------


def test_simulate_over_tls_feeds_a_running_bay(tmp_path: Path, certs: dict[str, Path]) -> None:
    """`chairside run` listening on MLLP over TLS with client certificates and an allow-list,
    `chairside simulate --hl7-tls-*` as the gateway: its readings arrive; a second simulator
    with gateway-2's certificate (not allowed) gets nothing in."""
    import os
    import signal
    import sqlite3
    import sys
    from contextlib import closing

    from simulators.broker import free_port

    root = Path(__file__).parent.parent
    scenario = tmp_path / "one.toml"
    scenario.write_text('name = "one"\nduration_s = 3600\n[[chairs]]\nid = "c1"\ntransport = "hl7"\n')
    port = free_port()
    bay = tmp_path / "bay.toml"
    bay.write_text(f"""[store]\npath = "bay.db"\ncommit_interval_ms = 50\n[[chairs]]\nid = "c1"\n
[[sources]]\nkind = "hl7"\nname = "hl7"\nport = {port}\nbeds = {{ "{BED}" = "c1" }}
tls_cert = "{certs['listener.crt']}"\ntls_key = "{certs['listener.key']}"
tls_client_ca = "{certs['ca.crt']}"\nallow = ["127.0.0.1", "CN=gateway-1"]\n""")
    python = [sys.executable, "-m", "station.cli"]

    def simulate(who: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*python, "simulate", "--scenario", str(scenario), "--serial-dir",
                                 str(tmp_path / "serial"), "--hl7-port", str(port), "--speed", "4",
                                 "--hl7-tls-ca", str(certs["ca.crt"]), "--hl7-tls-cert",
                                 str(certs[f"{who}.crt"]), "--hl7-tls-key", str(certs[f"{who}.key"])],
                                cwd=root, stderr=subprocess.DEVNULL, text=True)

    def devices() -> set[str]:
        if not (tmp_path / "bay.db").exists():  # (connecting would create it, world-readable)
            return set()
        try:
            with closing(sqlite3.connect(tmp_path / "bay.db")) as conn:
                return {d for (d,) in conn.execute("SELECT DISTINCT device FROM readings")}
        except sqlite3.OperationalError:  # no file or no schema yet
            return set()

    log = tmp_path / "run.log"
    with log.open("w") as run_log:
        run = subprocess.Popen([*python, "run", "--config", str(bay), "--port", str(free_port())],
                               cwd=root, stderr=run_log, text=True)
        sims = [simulate("gateway-2"), simulate("gateway-1")]
        try:
            wait_until(lambda: (devices() and "CN=gateway-2" in log.read_text()) or run.poll() is not None,
                       timeout=60, what="readings from gateway-1 and gateway-2 refused")
        finally:
            for proc in [*sims, run]:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGTERM)
            for proc in sims:
                proc.wait(timeout=20)
            run.wait(timeout=30)
    err = log.read_text()
    assert run.returncode == 0, err[-3000:]
    assert "listening for HL7/MLLP over TLS" in err and "client certificates required" in err
    assert "peer_not_allowed" in err and "not in allow" in err, err[-3000:]
    assert "connection from 127.0.0.1" in err and "(CN=gateway-1,O=Test Hospital): TLS" in err
    assert devices()
