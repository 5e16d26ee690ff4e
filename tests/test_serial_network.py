"""Serial devices behind a terminal server: the serial source reads a pyserial URL
(``socket://``, ``rfc2217://``) served by a real bridge the test starts (socat in TCP server
mode, ser2net speaking RFC 2217) in front of a real pseudo-terminal the test writes as the
device. A killed bridge is a device offline and comes back by itself; a silent link is
recycled; a second source (the standby server's) takes the device over from a stopped or
killed first one and reads on with nothing read twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Harness, wait_until
from serial_bridge import Bridge, Device, free_port, listening

from devices.serial_source import SerialSource
from monitor.config import SerialSource as SerialConfig
from monitor.seam import SourceState

ROOT = Path(__file__).resolve().parent.parent


class Tap:
    """The core, with a record of the seqs each source handed it (in order)."""

    def __init__(self, monitor) -> None:
        self._monitor = monitor
        self.seqs: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self._monitor, name)

    def ingest(self, readings):
        readings = list(readings)
        self.seqs.extend(r.seq for r in readings)
        return self._monitor.ingest(readings)


@pytest.fixture
def bay(tmp_path: Path) -> Iterator[dict]:
    h = Harness(tmp_path)
    h.clock.set(time.time())
    device = Device()
    bridge = Bridge(device, free_port())
    bridge.start()
    sources: list[SerialSource] = []

    def source(name: str = "ox-c1", port: str | None = None, **cfg: object) -> tuple[SerialSource, Tap]:
        tap = Tap(h.monitor)
        config = SerialConfig(kind="serial", name=name, chair="c1", device="ox-c1", protocol="chairside",
                              port=port or f"socket://127.0.0.1:{bridge.port}", reconnect_max_s=0.5,
                              **cfg)
        src = SerialSource(config, tap)  # type: ignore[arg-type]
        sources.append(src)
        src.start()
        return src, tap

    yield {"h": h, "device": device, "bridge": bridge, "source": source}
    for src in sources:
        src.stop()
    bridge.kill()
    device.close()
    h.monitor.close()


def offline_alarms(h: Harness) -> list:
    return [a for a in h.monitor.open_alarms() if a.code == "DEVICE_OFFLINE"]


def test_readings_arrive_through_a_terminal_servers_socket_url(bay):
    h, device = bay["h"], bay["device"]
    source, tap = bay["source"]()
    wait_until(lambda: source.state is SourceState.CONNECTED, what="link up")
    # the connection is made once socat has opened the tty: send until a line gets through
    wait_until(lambda: device.send_next() and source.readings_accepted > 0, what="a reading")
    h.flush()
    (stored, *_) = [r for r in h.monitor.store.iter_readings("c1", 0, None) if r.parameter == "hr"]
    assert stored.device == "ox-c1" and stored.seq in tap.seqs
    assert source.health()["port"] == f"socket://127.0.0.1:{bay['bridge'].port}"


def test_a_killed_bridge_is_a_device_offline_and_the_link_comes_back_by_itself(bay):
    h, device, bridge = bay["h"], bay["device"], bay["bridge"]
    h.monitor.start_session("c1", "P1", "nurse")
    source, tap = bay["source"]()
    device.stream()
    wait_until(lambda: source.readings_accepted > 0, what="readings through the bridge")
    bridge.kill()  # the terminal server rebooted: its TCP connection closed
    wait_until(lambda: source.state is SourceState.DISCONNECTED, what="link down")
    wait_until(lambda: offline_alarms(h), what="device offline alarm")
    assert h.monitor.status("c1").connection == "offline"
    assert "127.0.0.1" in (source.last_error or "")
    before = source.readings_accepted
    bridge.start()  # back, on the same port
    wait_until(lambda: source.readings_accepted > before, what="readings after the bridge is back")
    assert source.state is SourceState.CONNECTED and source.reconnects >= 1
    wait_until(lambda: not offline_alarms(h), what="offline alarm cleared")
    assert tap.seqs == sorted(set(tap.seqs))  # in order, none twice


def test_a_frozen_link_is_recycled_without_an_alarm_and_reads_on(bay):
    """socat stopped (SIGSTOP): its TCP connection stays open but nothing comes, as over a
    cut network. The source closes and reopens it after ``link_idle_s``, quietly."""
    h, device, bridge = bay["h"], bay["device"], bay["bridge"]
    h.monitor.start_session("c1", "P1", "nurse")
    source, tap = bay["source"](link_idle_s=0.3)
    device.stream()
    wait_until(lambda: source.readings_accepted > 0, what="readings")
    bridge.signal(signal.SIGSTOP)
    wait_until(lambda: source.link_recycles >= 2, what="the silent link recycled")
    assert source.reconnects == 0 and not offline_alarms(h)
    before = source.readings_accepted
    bridge.signal(signal.SIGCONT)
    wait_until(lambda: source.readings_accepted > before, what="readings after the thaw")
    assert tap.seqs == sorted(set(tap.seqs))


def test_a_standby_source_takes_over_from_a_stopped_one_and_reads_on(bay):
    device = bay["device"]
    a, tap_a = bay["source"]("ox-a")
    device.stream()
    wait_until(lambda: len(tap_a.seqs) >= 5, what="A reading")
    a.stop()
    b, tap_b = bay["source"]("ox-b")
    wait_until(lambda: len(tap_b.seqs) >= 5, what="B reading on")
    assert not set(tap_a.seqs) & set(tap_b.seqs), "a line accepted by both"
    assert tap_b.seqs == sorted(set(tap_b.seqs)) and tap_b.seqs[0] > tap_a.seqs[-1]
    assert b.state is SourceState.CONNECTED and b.reconnects == 0


def test_a_standby_source_takes_over_from_a_killed_process(bay):
    device, bridge = bay["device"], bay["bridge"]
    url = f"socket://127.0.0.1:{bridge.port}"
    child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "serial_child.py"), url],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"})
    lines: list[str] = []
    assert child.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(child.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        device.stream()
        wait_until(lambda: sum(x.startswith("seq ") for x in lines) >= 5, what="A reading")
        child.send_signal(signal.SIGKILL)  # the active server dies: no goodbye on the link
        child.wait()
        reader.join()  # all A printed before it died
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        child.wait()
        child.stdout.close()
    seen_a = [int(x.split()[1]) for x in lines if x.startswith("seq ")]
    assert len(seen_a) >= 5
    b, tap_b = bay["source"]("ox-b", port=url)
    wait_until(lambda: b.state is SourceState.CONNECTED, what="B connected")
    wait_until(lambda: len(tap_b.seqs) >= 5, what="B reading on after A was killed")
    assert not set(seen_a) & set(tap_b.seqs), "a line accepted by both"
    assert tap_b.seqs == sorted(set(tap_b.seqs)) and tap_b.seqs[0] > max(seen_a)


def test_rfc2217_sets_the_remote_port_and_survives_a_server_restart(bay, tmp_path):
    """ser2net, a real RFC 2217 server, in front of the device's tty: the source's baud rate
    is set on the remote port; a killed server is a device offline, its return a reconnect."""
    h, device = bay["h"], bay["device"]
    port = free_port()
    conf = tmp_path / "ser2net.yaml"
    conf.write_text(f"%YAML 1.1\n---\nconnection: &bed1\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n"
                    f"  connector: serialdev,{device.tty},9600n81,local\n")

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["ser2net", "-n", "-c", str(conf), "-P", str(tmp_path / "ser2net.pid")],
                                start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_until(lambda: listening(port), what="ser2net listening")
        return proc

    server = start()
    try:
        assert termios.tcgetattr(device.slave)[4] != termios.B19200
        h.monitor.start_session("c1", "P1", "nurse")
        # ign_set_control: a pty has no modem lines, so ser2net never answers DTR/RTS requests
        source, tap = bay["source"](port=f"rfc2217://127.0.0.1:{port}?ign_set_control", baudrate=19200)
        device.stream()
        wait_until(lambda: source.readings_accepted > 0, what="readings over RFC 2217")
        assert termios.tcgetattr(device.slave)[4] == termios.B19200  # set on the remote side
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        wait_until(lambda: source.state is SourceState.DISCONNECTED, what="link down")
        wait_until(lambda: offline_alarms(h), what="device offline alarm")
        before = source.readings_accepted
        server = start()
        wait_until(lambda: source.readings_accepted > before, what="readings after ser2net is back")
        wait_until(lambda: not offline_alarms(h), what="offline alarm cleared")
        assert tap.seqs == sorted(set(tap.seqs))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
