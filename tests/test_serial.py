"""The serial adapter on real pseudo-terminals, opened with pyserial by path, feeding a real core."""

from __future__ import annotations

import contextlib
import os
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Harness, wait_until

from devices.serial_source import SerialSource
from monitor.config import SerialSource as SerialConfig
from monitor.readings import QualityFlag
from monitor.records import AlarmState
from monitor.seam import SourceState
from wire.serial.chairside_line import chairside_line


class FakeDevice:
    """The device end of a pty; ``link`` is the stable path the adapter opens."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master: int | None = None
        self.slave: int | None = None
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tmp = self.link.with_name("link.new")
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, self.link)

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None
        self.link.unlink()

    def send(self, data: bytes | str) -> None:
        assert self.master is not None
        os.write(self.master, data.encode() if isinstance(data, str) else data)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[..., tuple[Harness, FakeDevice, SerialSource]]]:
    made: list[tuple[Harness, FakeDevice, SerialSource]] = []

    def make(protocol: str = "chairside", **cfg: object) -> tuple[Harness, FakeDevice, SerialSource]:
        h = Harness(tmp_path)
        h.clock.set(time.time())
        device = FakeDevice(tmp_path / "ttyUSB-c1")
        config = SerialConfig(kind="serial", name="ox-c1", chair="c1", port=str(device.link),
                              protocol=protocol, reconnect_max_s=0.5, **cfg)
        source = SerialSource(config, h.monitor)
        source.start()
        wait_until(lambda: source.state is SourceState.CONNECTED, what="port open")
        made.append((h, device, source))
        return h, device, source

    yield make
    for h, device, source in made:
        source.stop()
        with contextlib.suppress(OSError):
            device.unplug()
        h.monitor.close()


def stored(h: Harness, param: str) -> list:
    h.flush()
    return [r for r in h.monitor.store.iter_readings("c1", 0, None) if r.parameter == param]


def test_chairside_lines_reach_the_store(rig):
    h, device, source = rig("chairside")
    device.send(chairside_line({"hr": 72, "spo2": 98, "pr": 71, "nibp_sys": 121, "nibp_dia": 79,
                                "nibp_map": 93}, seq=1) + "\r\n")
    wait_until(lambda: source.readings_accepted == 6, what="6 readings")
    (hr,) = stored(h, "hr")
    assert (hr.value, hr.device, hr.seq) == (72, "ox-c1", 1)
    assert h.monitor.status("c1").vitals["nibp_map"].value == 93


def test_masimo_lines_parse_by_key_with_flags(rig):
    h, device, source = rig("masimo")
    device.send("11/25/26 10:00:01 SN=0000071234 SPO2=097% BPM=072 PI=02.13 ALARM=0000 EXC=000000\r\n")
    device.send("11/25/26 10:00:02 SN=0000071234 BPM=--- SPO2=---% EXC=000020 PI=--.--\r\n")
    wait_until(lambda: source.readings_accepted == 4, what="4 readings")
    spo2 = stored(h, "spo2")
    assert [r.value for r in spo2] == [97, None]
    assert spo2[1].flags & QualityFlag.SENSOR_OFF


def test_garbage_partial_and_overlong_lines_are_dropped_and_counted(rig):
    h, device, source = rig("chairside")
    good = chairside_line({"hr": 70}, seq=1)
    device.send(b"\x00\xff\xfe garbage\r\n")  # not UTF-8
    device.send("$VT,seq=2,hr=70*00\r\n")  # wrong checksum
    device.send("X" * 600 + "\r\n")  # over-long
    device.send(good[:10])  # a partial line, completed by the next write
    device.send(good[10:] + "\r\n")
    wait_until(lambda: source.readings_accepted == 1, what="the good line")
    wait_until(lambda: sum(source.rejected.counts.values()) == 3, what="3 rejections")
    assert set(source.rejected.counts) == {"not_utf8", "checksum", "too_long"}
    assert [r.value for r in stored(h, "hr")] == [70]


def test_implausible_values_are_refused_by_the_core_and_counted_at_the_source(rig):
    h, device, source = rig("chairside")
    device.send(chairside_line({"hr": 400, "spo2": 97}, seq=1) + "\r\n")
    wait_until(lambda: source.readings_accepted == 1, what="spo2 accepted")
    wait_until(lambda: source.rejected.counts.get("core:implausible") == 1, what="hr refused")
    assert stored(h, "hr") == []


def test_unplug_raises_device_offline_and_the_port_comes_back_by_itself(rig):
    h, device, source = rig("chairside")
    h.monitor.start_session("c1", "P1", "nurse")
    device.send(chairside_line({"hr": 70}, seq=1) + "\r\n")
    wait_until(lambda: source.readings_accepted == 1, what="first reading")
    device.unplug()
    wait_until(lambda: source.state is SourceState.DISCONNECTED, what="disconnected")
    wait_until(lambda: any(a.code == "DEVICE_OFFLINE" for a in h.monitor.open_alarms()),
               what="device offline alarm")
    (alarm,) = [a for a in h.monitor.open_alarms() if a.code == "DEVICE_OFFLINE"]
    # in nurses' words; the source is named in the rule (and the event's note, the log)
    assert alarm.state is AlarmState.ACTIVE and alarm.message.startswith("Monitor offline")
    assert alarm.rule == "offline_ox-c1"
    assert h.monitor.status("c1").connection == "offline"
    device.plug()  # a new pty behind the same path, as a re-plugged USB adapter
    wait_until(lambda: source.state is SourceState.CONNECTED, what="reconnected")
    device.send(chairside_line({"hr": 71}, seq=2) + "\r\n")
    wait_until(lambda: source.readings_accepted == 2, what="reading after replug")
    assert not any(a.code == "DEVICE_OFFLINE" for a in h.monitor.open_alarms())
    assert source.reconnects == 1 and source.health()["state"] == "connected"


def test_a_port_that_is_not_there_retries_without_operator_action(tmp_path):
    h = Harness(tmp_path)
    config = SerialConfig(kind="serial", name="ox", chair="c1", port=str(tmp_path / "nope"),
                          protocol="nonin", reconnect_max_s=0.2)
    source = SerialSource(config, h.monitor)
    source.start()
    try:
        wait_until(lambda: source.state is SourceState.DISCONNECTED, what="disconnected")
        assert "cannot open" in (source.last_error or "")
        device = FakeDevice(tmp_path / "nope")
        wait_until(lambda: source.state is SourceState.CONNECTED, what="opened once it exists")
        device.unplug()
    finally:
        source.stop()
        h.monitor.close()
    assert source.state is SourceState.STOPPED
