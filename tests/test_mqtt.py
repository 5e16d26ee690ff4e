"""The MQTT source: pure payload parsing, then a real Mosquitto (its own, on a free port)
with a real core on a real SQLite file and paho publishers standing in for the devices."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import Harness, scaled, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from devices import mqtt_source
from devices.mqtt_source import STOP_TIMEOUT_S, MqttSource, SeqTracker, SeqVerdict
from monitor.config import MqttSource as MqttConfig
from monitor.readings import QualityFlag, Reading
from monitor.seam import IngestResult, ParseError, SourceState
from monitor.store import StoreError
from monitor.timefmt import rfc3339
from simulators.broker import Mosquitto, free_port
from wire.mqtt_json import MAX_PAYLOAD, parse_status, parse_topic, parse_vitals

TIMEOUT = 15.0


def payload(seq: int = 1, t: float = 1_800_000_000.25, device: str = "ox-1", **fields: Any) -> bytes:
    return json.dumps({"device": device, "seq": seq, "ts": rfc3339(t), **fields}).encode()


def reason_of(data: bytes) -> str:
    with pytest.raises(ParseError) as info:
        parse_vitals(data)
    return info.value.reason


# --- pure parsing ---------------------------------------------------------------------------


def test_topic_gives_chair_and_kind():
    assert parse_topic("chairside/bay1/c1/vitals", "chairside", "bay1") == ("c1", "vitals")
    assert parse_topic("chairside/bay1/chair_7-b/status", "chairside", "bay1") == ("chair_7-b", "status")
    for other in ("other/bay1/c1/vitals", "chairside/bay2/c1/vitals", "chairside/bay1/c1/alarms",
                  "chairside/bay1/c1/vitals/x", "chairside/bay1/c1"):
        assert parse_topic(other, "chairside", "bay1") is None, other


@pytest.mark.parametrize("topic", ["chairside/bay1//vitals", "chairside/bay1/chair 3/vitals",
                                   "chairside/bay1/" + "c" * 33 + "/vitals", "chairside/bay1/stuhl-ü/status",
                                   "chairside/bay 1/c1/vitals", "chairside//c1/vitals"])
def test_bad_topic_segments_are_refused(topic):
    with pytest.raises(ParseError) as info:
        parse_topic(topic, "chairside", "bay1")
    assert info.value.reason == "bad_topic"


def test_full_payload_parses():
    frame = parse_vitals(json.dumps({
        "device": "rad97-0012", "seq": 1842, "ts": "2026-11-23T19:40:01.250Z",
        "hr": 72, "spo2": 98, "pr": 71.5, "nibp": {"sys": 121, "dia": 79, "map": 93},
        "flags": ["SENSOR_OFF", "LOW_PERFUSION"], "firmware": "1.2", "extra": {"x": [1]},
    }).encode())
    assert frame.device == "rad97-0012" and frame.seq == 1842
    assert frame.time == pytest.approx(1795462801.25)
    assert frame.values == {"hr": 72.0, "spo2": 98.0, "pr": 71.5, "nibp_sys": 121.0, "nibp_dia": 79.0,
                            "nibp_map": 93.0}
    assert all(type(v) is float for v in frame.values.values())
    assert frame.flags == QualityFlag.SENSOR_OFF | QualityFlag.LOW_PERFUSION


def test_partial_payloads_and_nulls():
    frame = parse_vitals(b'{"device": "d", "seq": 0, "ts": 1795462801, "spo2": null}')
    assert frame.values == {"spo2": None} and frame.time == 1795462801.0 and frame.flags == 0
    frame = parse_vitals(b'{"device": "d", "seq": 3, "ts": 1795462801.5, "nibp": {"sys": 120, "map": null}}')
    assert frame.values == {"nibp_sys": 120.0, "nibp_map": None}
    # "nibp": null is "no cuff cycle in this message", not three empty NIBP readings
    frame = parse_vitals(b'{"device": "d", "seq": 4, "ts": 1795462801, "hr": 60, "nibp": null, '
                         b'"flags": null}')
    assert frame.values == {"hr": 60.0}
    frame = parse_vitals(b'{"device": "d", "seq": 5, "ts": "2026-11-23T20:40:01+01:00", "flags": []}')
    assert frame.time == pytest.approx(1795462801.0) and frame.values == {}


@pytest.mark.parametrize("data, reason", [
    (b'{"device": "d", "seq": 1, "ts": 1, "pad": "' + b"x" * MAX_PAYLOAD + b'"}', "too_large"),
    (b'{"device": "\xff\xfe", "seq": 1, "ts": 1}', "not_utf8"),
    (b'{"device": "d", "seq": 1, "ts": 1', "bad_json"),
    (b"", "bad_json"),
    (b"[" * 8000 + b"]" * 8000, "bad_json"),
    (b'[{"device": "d", "seq": 1, "ts": 1}]', "malformed"),
    (b'"online"', "malformed"),
    (b"42", "malformed"),
    (b'{"seq": 1, "ts": 1}', "bad_field"),
    (b'{"device": 12, "seq": 1, "ts": 1}', "bad_field"),
    (b'{"device": "", "seq": 1, "ts": 1}', "bad_field"),
    (b'{"device": "' + b"d" * 65 + b'", "seq": 1, "ts": 1}', "bad_field"),
    (b'{"device": "d", "ts": 1}', "bad_field"),
    (b'{"device": "d", "seq": true, "ts": 1}', "bad_field"),
    (b'{"device": "d", "seq": 1.0, "ts": 1}', "bad_field"),
    (b'{"device": "d", "seq": "1", "ts": 1}', "bad_field"),
    (b'{"device": "d", "seq": -1, "ts": 1}', "bad_field"),
    (b'{"device": "d", "seq": 99999999999999999999, "ts": 1}', "bad_field"),
    (b'{"device": "d", "seq": 1}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": "2026-11-23T19:40:01"}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": "2026-11-23"}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": "20261123T194001Z"}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": "2026-13-45T19:40:01Z"}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": "yesterday"}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": true}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": null}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": 1e999}', "bad_time"),
    (b'{"device": "d", "seq": 1, "ts": 1, "hr": "72"}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "hr": true}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "hr": [72]}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "spo2": NaN}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "pr": Infinity}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "pr": -Infinity}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "hr": 1e999}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "hr": ' + b"9" * 400 + b"}", "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "nibp": [120, 80, 93]}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "nibp": "120/80"}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "nibp": {"sys": "120"}}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "nibp": {"dia": NaN}}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "flags": ["SENSOR_OFF", "ON_FIRE"]}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "flags": "SENSOR_OFF"}', "bad_value"),
    (b'{"device": "d", "seq": 1, "ts": 1, "flags": [1]}', "bad_value"),
])
def test_every_parse_error_reason(data, reason):
    assert reason_of(data) == reason


def test_payload_of_exactly_16_kib_is_taken():
    head = b'{"device": "d", "seq": 1, "ts": 1, "pad": "'
    data = head + b"x" * (MAX_PAYLOAD - len(head) - 2) + b'"}'
    assert len(data) == MAX_PAYLOAD
    assert parse_vitals(data).values == {}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["device", "seq", "ts", "hr", "spo2", "pr", "nibp", "sys", "dia", "map",
                         "flags", "x"]), inner, max_size=6), max_leaves=20).map(
    lambda v: json.dumps(v).encode())))
def test_any_bytes_give_a_frame_or_a_parse_error(data):
    try:
        frame = parse_vitals(data)
    except ParseError as exc:
        assert exc.reason in {"too_large", "not_utf8", "bad_json", "malformed", "bad_field", "bad_time",
                              "bad_value"}
    else:
        assert isinstance(frame.device, str) and isinstance(frame.seq, int)
        assert all(v is None or (type(v) is float and v - v == 0) for v in frame.values.values())


def test_status_payloads():
    assert parse_status(b"online") is True
    assert parse_status(b"offline") is False
    assert parse_status(b" Offline\n") is False
    for bad in (b"", b"down", b"\xff", b'{"status": "online"}', b"online" * 20):
        with pytest.raises(ParseError) as info:
            parse_status(bad)
        assert info.value.reason == "bad_status"


def test_seq_tracker():
    seqs = SeqTracker(window=8, max_devices=2)

    def see(device: str, seq: int, t: float | None = None) -> SeqVerdict:
        t = float(seq) if t is None else t
        check = seqs.check(device, seq, t)
        if check.verdict is not SeqVerdict.DUPLICATE:
            seqs.record(device, seq, t, check)
        return check.verdict

    assert see("a", 5) is SeqVerdict.NEW
    assert see("a", 6) is SeqVerdict.NEW
    assert see("a", 6) is SeqVerdict.DUPLICATE
    assert see("a", 9) is SeqVerdict.NEW and (seqs.gaps, seqs.missing) == (1, 2)
    assert seqs.last_gap is not None and seqs.last_gap["after"] == 6 and seqs.last_gap["seq"] == 9
    assert see("a", 7) is SeqVerdict.LATE and seqs.late == 1
    assert see("a", 7) is SeqVerdict.DUPLICATE
    assert see("a", 0) is SeqVerdict.RESTART  # device rebooted
    assert see("a", 1) is SeqVerdict.NEW and seqs.gaps == 1
    assert see("a", 0) is SeqVerdict.DUPLICATE  # the same message again
    assert see("a", 0, t=99.0) is SeqVerdict.RESTART  # seq 0 again, another message: rebooted again
    for seq in range(1, 40):
        see("a", seq)
    assert see("a", 2) is SeqVerdict.RESTART  # far behind the window: counting started anew
    see("b", 1)
    see("c", 1)
    assert len(seqs) == 2  # "a", the least recently heard, is forgotten
    assert see("a", 2) is SeqVerdict.NEW


# --- with a real broker -----------------------------------------------------------------------


DEVICE_SCRIPT = r"""
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, topic = int(sys.argv[1]), sys.argv[2]
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="device-will", protocol=mqtt.MQTTv311)
c.will_set(topic, "offline", qos=1, retain=True)
c.connect("127.0.0.1", port, keepalive=60)
c.loop_start()
c.publish(topic, "online", qos=1, retain=True).wait_for_publish(10)
print("ready", flush=True)
time.sleep(600)
"""


class Publisher:
    """A device's side: a paho client publishing with QoS 1 and waiting for the PUBACK."""

    def __init__(self, port: int, client_id: str = "test-device", protocol: Any = mqtt.MQTTv311) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_until(self.client.is_connected, what="publisher connected")

    def send(self, topic: str, data: bytes | str, retain: bool = False) -> None:
        info = self.client.publish(topic, data, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class HeldSink:
    """The core, except that durability callbacks wait until the test releases them."""

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor
        self.clock = monitor.clock
        self.held: list[Callable[[], None]] = []

    def ingest(self, readings: Iterable[Reading]) -> IngestResult:
        return self.monitor.ingest(readings)

    def report_connection(self, chair: str, source: str, online: bool, detail: str = "") -> None:
        self.monitor.report_connection(chair, source, online, detail)

    def on_durable(self, ticket: int | None, callback: Callable[[], None]) -> None:
        self.held.append(callback)

    def device_seqs(self) -> Any:
        return self.monitor.device_seqs()

    def report_gap(self, *args: Any) -> None:
        self.monitor.report_gap(*args)

    def report_source(self, *args: Any, **kw: Any) -> None:
        self.monitor.report_source(*args, **kw)

    def release(self) -> None:
        held, self.held = self.held, []
        for callback in held:
            callback()


class BlackHoleSink(HeldSink):
    """A monitor that dies before its store commits: readings taken, never made durable."""

    def ingest(self, readings: Iterable[Reading]) -> IngestResult:
        return IngestResult(len(list(readings)), (), 1)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def live(harness: Harness) -> Harness:
    harness.clock.set(round(time.time(), 3))  # the core refuses times far from its clock
    return harness


@pytest.fixture
def pub(broker: Mosquitto) -> Iterator[Publisher]:
    p = Publisher(broker.port)
    yield p
    p.close()


@pytest.fixture
def make_source(broker: Mosquitto, live: Harness) -> Iterator[Callable[..., MqttSource]]:
    made: list[MqttSource] = []

    def make(sink: Any = None, start: bool = True, **cfg: Any) -> MqttSource:
        config = MqttConfig.model_validate({"kind": "mqtt", "name": "broker1", "port": broker.port,
                                            "client_id": "chairside-test", "reconnect_max_s": 1,
                                            "keepalive_s": 5} | cfg)
        source = MqttSource(config, sink or live.monitor)
        made.append(source)
        if start:
            source.start()
            wait_until(lambda: source.state is SourceState.CONNECTED, what="source connected")
        return source

    yield make
    for source in made:
        source.stop()


def stored(harness: Harness, chair: str = "c1") -> list[Reading]:
    store = harness.monitor.store
    assert store is not None
    return list(store.iter_readings(chair, 0, None))


def count(harness: Harness, chair: str = "c1") -> int:
    store = harness.monitor.store
    assert store is not None
    return store.count_readings(chair)


def device_offline(harness: Harness, chair: str = "c1") -> list[Any]:
    return [a for a in harness.monitor.open_alarms() if a.code == "DEVICE_OFFLINE" and a.chair == chair]


VITALS = "chairside/bay1/{}/vitals"
STATUS = "chairside/bay1/{}/status"


def test_vitals_reach_the_store(live, make_source, pub):
    source = make_source()
    t = live.clock.now() - 1.5
    pub.send(VITALS.format("c1"), payload(seq=7, t=t, device="rad97-0012", hr=72, spo2=98, pr=71,
                                          nibp={"sys": 121, "dia": 79, "map": 93},
                                          flags=["SENSOR_OFF"], battery=80))
    wait_until(lambda: count(live) == 6, what="six readings stored")
    rows = {r.parameter: r for r in stored(live)}
    assert {k: r.value for k, r in rows.items()} == {"hr": 72, "spo2": 98, "pr": 71, "nibp_sys": 121,
                                                     "nibp_dia": 79, "nibp_map": 93}
    for r in rows.values():
        assert r.device == "rad97-0012" and r.seq == 7 and r.flags == QualityFlag.SENSOR_OFF
        assert r.device_time == pytest.approx(t, abs=1e-3)
        assert r.receive_time == live.clock.now()
    health = source.health()
    assert health["frames_accepted"] == 1 and health["readings_accepted"] == 6
    assert health["broker"]["connected"] and health["state"] == "connected"
    assert health["rejected"] == {}
    wait_until(lambda: source.health()["acks_sent"] == 1, what="the message acknowledged")


def test_nibp_only_message_gives_three_readings_and_chairs_are_mapped(live, make_source, pub):
    make_source(chairs={"chair-7": "c2"})
    pub.send(VITALS.format("chair-7"), payload(t=live.clock.now(), device="cuff-2",
                                               nibp={"sys": 118, "dia": 76, "map": 90}))
    wait_until(lambda: count(live, "c2") == 3)
    assert sorted((r.parameter, r.value) for r in stored(live, "c2")) == [
        ("nibp_dia", 76), ("nibp_map", 90), ("nibp_sys", 118)]


def test_duplicate_is_stored_once_and_counted(live, make_source, pub):
    source = make_source()
    message = payload(seq=41, t=live.clock.now(), hr=80, spo2=97)
    pub.send(VITALS.format("c1"), message)
    pub.send(VITALS.format("c1"), message)  # a redelivery: same device, same seq
    pub.send(VITALS.format("c1"), payload(seq=42, t=live.clock.now() + 1, hr=81))
    wait_until(lambda: count(live) == 3)
    live.flush()
    assert count(live) == 3
    assert source.duplicates == 1 and source.rejected.counts["duplicate"] == 1
    assert source.health()["duplicates"] == 1
    wait_until(lambda: source.health()["acks_sent"] == 3, what="all three acknowledged")


@pytest.mark.parametrize("restart_monitor", [False, True])
def test_messages_stored_but_not_acknowledged_are_stored_once_after_a_restart(
        live, make_source, pub, restart_monitor):
    """The crash window: readings committed, PUBACKs not yet sent. The broker delivers those
    messages again to the next run, which knows them from the store and does not store them
    a second time (with the monitor restarted too: its memory comes from the store alone)."""
    held = HeldSink(live.monitor)
    first = make_source(sink=held)
    t = live.clock.now()
    for seq in range(1, 21):
        pub.send(VITALS.format("c1"), payload(seq=seq, t=t + seq / 10, hr=60 + seq, spo2=97))
    wait_until(lambda: first.messages == 20, what="all 20 taken")
    live.flush()
    assert count(live) == 40  # committed (HR and SpO2 of each), never acknowledged
    first.stop(timeout=0.5)
    assert first.health()["acks_sent"] == 0
    if restart_monitor:
        live.restart()
    second = make_source()
    pub.send(VITALS.format("c1"), payload(seq=21, t=t + 2.1, hr=81, spo2=97))
    wait_until(lambda: second.messages == 21, what="the 20 redelivered, then the new one")
    wait_until(lambda: second.health()["acks_sent"] == 21, what="all acknowledged")
    live.flush()
    assert count(live) == 42
    rows = [(r.seq, r.parameter) for r in stored(live)]
    assert len(rows) == len(set(rows))  # each (seq, parameter) exactly once
    assert second.duplicates == 20 and second.health()["duplicates"] == 20
    assert second.health()["seq_gaps"] == 0


def test_seq_gap_is_recorded(live, make_source, pub):
    source = make_source()
    t = live.clock.now()
    for seq in (1, 2, 6, 7):
        pub.send(VITALS.format("c1"), payload(seq=seq, t=t + seq, hr=70 + seq))
    wait_until(lambda: count(live) == 4)
    health = source.health()
    assert health["seq_gaps"] == 1 and health["missing_seqs"] == 3
    assert health["last_gap"]["after"] == 2 and health["last_gap"]["seq"] == 6
    assert health["duplicates"] == 0


def test_bad_messages_are_counted_and_the_loop_keeps_going(live, make_source, pub):
    source = make_source()
    t = live.clock.now()
    pub.send(VITALS.format("c1"), b'{"device": "ox-1", "seq": 1, ')  # truncated
    pub.send(VITALS.format("c1"), b'{"device": "ox-1", "seq": 2, "ts": 1, "hr": NaN}')
    pub.send(VITALS.format("c1"), b"\xff\xfe")
    pub.send(VITALS.format("chair 3"), payload(seq=3, t=t, hr=70))  # a space in the chair
    pub.send("chairside/bay1//vitals", payload(seq=4, t=t, hr=70))  # an empty chair
    pub.send(VITALS.format("c9"), payload(seq=5, t=t, hr=70, spo2=97))  # no such chair
    pub.send(STATUS.format("c1"), "sleeping")
    pub.send(STATUS.format("c9"), "offline")
    pub.send(VITALS.format("c1"), payload(seq=6, t=t, hr=350, spo2=40))  # implausible values
    pub.send(VITALS.format("c1"), payload(seq=7, t=t + 1, hr=71))  # a good one after all that
    wait_until(lambda: count(live) == 1, what="the good message stored")
    counts = source.rejected.counts
    assert (counts["bad_json"], counts["bad_value"], counts["not_utf8"], counts["bad_topic"]) == (1, 1, 1, 2)
    assert counts["core:unknown_chair"] == 3  # two readings of the vitals and the status
    assert counts["bad_status"] == 1
    assert counts["core:implausible"] == 2
    assert source.state is SourceState.CONNECTED
    wait_until(lambda: source.health()["acks_sent"] == 10, what="every message acknowledged")


def test_a_handler_error_is_acknowledged_and_not_redelivered(live, make_source, pub, monkeypatch):
    import devices.mqtt_messages as module

    real = module.frame_readings

    def explode(frame: Any, **kw: Any) -> list[Reading]:
        if frame.device == "poison":
            raise RuntimeError("bug")
        return real(frame, **kw)

    monkeypatch.setattr(module, "frame_readings", explode)
    source = make_source()
    t = live.clock.now()
    pub.send(VITALS.format("c1"), payload(seq=1, t=t, device="poison", hr=70))
    pub.send(VITALS.format("c1"), payload(seq=1, t=t, device="ox-1", hr=71))
    wait_until(lambda: count(live) == 1)
    assert source.rejected.counts["handler_error"] == 1
    wait_until(lambda: source.health()["acks_sent"] == 2)
    source.stop()
    again = make_source()  # same client id: the poison message is not waiting for it
    pub.send(VITALS.format("c1"), payload(seq=2, t=t + 1, device="ox-1", hr=72))
    wait_until(lambda: count(live) == 2)
    assert again.messages == 1 and again.rejected.counts["handler_error"] == 0


def test_a_message_the_core_refuses_to_take_is_redelivered(live, make_source, pub, monkeypatch):
    real = live.monitor.ingest
    failures = [StoreError("store is closed")]

    def ingest(readings: Iterable[Reading]) -> IngestResult:
        if failures:
            raise failures.pop()
        return real(readings)

    monkeypatch.setattr(live.monitor, "ingest", ingest)
    source = make_source()
    pub.send(VITALS.format("c1"), payload(seq=1, t=live.clock.now(), hr=70))
    wait_until(lambda: source.rejected.counts["sink_error"] == 1)
    assert count(live) == 0 and source.health()["acks_sent"] == 0
    source.stop(timeout=1)
    make_source()  # the broker delivers it again to the next session
    wait_until(lambda: count(live) == 1)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_message_published_while_the_monitor_is_away_arrives_once(live, make_source, pub, protocol):
    first = make_source(protocol=protocol)
    pub.send(VITALS.format("c1"), payload(seq=1, t=live.clock.now(), hr=70))
    wait_until(lambda: count(live) == 1)
    first.stop()
    assert first.state is SourceState.STOPPED
    pub.send(VITALS.format("c1"), payload(seq=2, t=live.clock.now() + 1, hr=71))  # nobody listening
    pub.send(VITALS.format("c1"), payload(seq=3, t=live.clock.now() + 2, hr=72))
    second = make_source(protocol=protocol)  # same client id, persistent session
    wait_until(lambda: count(live) == 3, what="queued messages delivered")
    assert second.health()["broker"]["session_present"] is True
    live.flush()
    assert sorted(r.seq for r in stored(live)) == [1, 2, 3]
    assert second.messages == 2 and second.duplicates == 0
    second.stop()  # the same instance can be started again
    pub.send(VITALS.format("c1"), payload(seq=4, t=live.clock.now() + 3, hr=73))
    second.start()
    wait_until(lambda: count(live) == 4)
    assert second.reconnects == 0 and second.duplicates == 0


def test_retained_offline_status_raises_device_offline_and_online_clears_it(live, make_source, pub):
    live.monitor.start_session("c1", "P1", "n")
    pub.send(STATUS.format("c1"), "offline", retain=True)  # before the monitor subscribes
    make_source()
    wait_until(lambda: device_offline(live), what="DEVICE_OFFLINE raised")
    (alarm,) = device_offline(live)
    assert alarm.kind == "technical" and alarm.message == "Monitor offline (MQTT)"  # no source name
    pub.send(STATUS.format("c1"), "online", retain=True)
    wait_until(lambda: not device_offline(live), what="DEVICE_OFFLINE cleared")


def test_last_will_of_a_killed_device_raises_device_offline(live, make_source, broker, pub):
    live.monitor.start_session("c1", "P1", "n")
    source = make_source()
    proc = subprocess.Popen([sys.executable, "-c", DEVICE_SCRIPT, str(broker.port), STATUS.format("c1")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        wait_until(lambda: source.messages >= 1, what="the device's 'online' seen")
        assert not device_offline(live)
        proc.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker publishes the Last Will
        proc.wait(timeout=TIMEOUT)
        wait_until(lambda: device_offline(live), what="DEVICE_OFFLINE from the Last Will")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
    pub.send(STATUS.format("c1"), "online", retain=True)  # the device is back
    wait_until(lambda: not device_offline(live), what="DEVICE_OFFLINE cleared")


def test_broker_outage_reconnects_by_itself(live, make_source, broker):
    source = make_source()
    with_broker = Publisher(broker.port, "before")
    with_broker.send(VITALS.format("c1"), payload(seq=1, t=live.clock.now(), hr=70))
    wait_until(lambda: count(live) == 1)
    with_broker.close()
    broker.stop()
    wait_until(lambda: source.state is SourceState.DISCONNECTED, what="DISCONNECTED")
    assert source.health()["broker"]["connected"] is False and source.last_error
    broker.start()  # same port, same persistence folder
    wait_until(lambda: source.state is SourceState.CONNECTED, what="CONNECTED again")
    assert source.reconnects >= 1 and source.health()["broker"]["session_present"] is True
    after = Publisher(broker.port, "after")
    try:
        after.send(VITALS.format("c1"), payload(seq=2, t=live.clock.now() + 1, hr=71))
        wait_until(lambda: count(live) == 2, what="message after the outage stored")
    finally:
        after.close()


def test_ack_is_sent_only_once_the_readings_are_durable_and_in_order(live, make_source, pub):
    sink = HeldSink(live.monitor)
    source = make_source(sink=sink)
    client = source._client
    assert client is not None
    acked: list[int] = []
    real_ack = client.ack
    lock = threading.Lock()

    def spy(mid: int, qos: int) -> Any:
        with lock:
            acked.append(mid)
        return real_ack(mid, qos)

    client.ack = spy  # type: ignore[method-assign]
    pub.send(VITALS.format("c1"), payload(seq=1, t=live.clock.now(), hr=70, spo2=97))
    pub.send(VITALS.format("c1"), b"not json")  # needs no storing, but is acked after the first
    wait_until(lambda: len(sink.held) == 2, what="both messages handled")
    assert live.monitor.accepted == 2  # in the core's buffers ...
    assert acked == []  # ... but not acknowledged before the store says so
    assert source.health()["acks_pending"] == 2
    sink.held[1]()  # the second finishes first: its PUBACK still waits for the first one
    assert acked == []
    sink.release()
    assert len(acked) == 2 and acked == sorted(acked)
    assert source.health()["acks_pending"] == 0


@pytest.mark.parametrize("harness", ["sqlite", "postgresql"], indirect=True)
def test_the_real_core_acks_only_after_commit(live, make_source, pub):
    source = make_source()
    store = live.monitor.store
    assert store is not None
    client = source._client
    assert client is not None
    seen: list[int] = []
    real_ack = client.ack

    def spy(mid: int, qos: int) -> Any:
        seen.append(count(live))  # what is on disk when the PUBACK is sent
        return real_ack(mid, qos)

    client.ack = spy  # type: ignore[method-assign]
    pub.send(VITALS.format("c1"), payload(seq=1, t=live.clock.now(), hr=70, spo2=97, pr=69))
    wait_until(lambda: seen)
    assert seen == [3]


def test_a_monitor_dying_before_commit_gets_the_message_again(live, make_source, pub):
    lost = make_source(sink=BlackHoleSink(live.monitor))
    pub.send(VITALS.format("c1"), payload(seq=1, t=live.clock.now(), hr=70))
    wait_until(lambda: lost.messages == 1)
    lost.stop(timeout=0.5)  # never durable, so never acknowledged
    assert lost.health()["acks_sent"] == 0
    survivor = make_source()
    wait_until(lambda: count(live) == 1, what="redelivered and stored")
    live.flush()
    assert count(live) == 1 and survivor.messages == 1


# --- the deployment example, authentication, TLS ---------------------------------------------

DEPLOY = Path(__file__).parent.parent / "deploy"


def deploy_broker(folder: Path) -> Mosquitto:
    """deploy/mosquitto.conf and the example ACL as shipped, with paths and port for a test."""
    folder.mkdir(parents=True)
    passwd = folder / "chairside.passwd"
    for i, (user, password) in enumerate([("chairside-monitor", "m0n1tor"), ("rad97-0012", "dev1ce")]):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd), user, password],
                       check=True, capture_output=True, timeout=TIMEOUT)
    text = (DEPLOY / "mosquitto.conf").read_text("utf-8")
    swaps = {"listener 1883 127.0.0.1": "listener {port} 127.0.0.1",
             "persistence_location /var/lib/mosquitto/": "persistence_location {data}/",
             "password_file /etc/mosquitto/chairside.passwd": f"password_file {passwd}",
             "acl_file /etc/mosquitto/chairside.acl": f"acl_file {DEPLOY / 'mosquitto.acl.example'}",
             "log_dest syslog": "log_dest stdout"}
    for old, new in swaps.items():
        assert old in text, old
        text = text.replace(old, new)
    return Mosquitto(folder, config=text)


def test_deployment_config_enforces_passwords_and_the_acl(live, tmp_path):
    (tmp_path / "monitor.pw").write_text("m0n1tor\nsecond line is ignored\n")
    (tmp_path / "wrong.pw").write_text("wrong\n")
    with deploy_broker(tmp_path / "deployed") as broker:
        cfg = {"kind": "mqtt", "name": "broker1", "port": broker.port, "reconnect_max_s": 1,
               "chairs": {"c01": "c1", "c02": "c2"}}
        sources = [MqttSource(MqttConfig.model_validate(cfg), live.monitor),
                   MqttSource(MqttConfig.model_validate(cfg | {"username": "chairside-monitor",
                                                               "password_file": tmp_path / "wrong.pw"}),
                              live.monitor)]
        source = MqttSource(MqttConfig.model_validate(cfg | {"username": "chairside-monitor",
                                                             "password_file": tmp_path / "monitor.pw"}),
                            live.monitor)
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rad97-0012", protocol=mqtt.MQTTv311)
        device.username_pw_set("rad97-0012", "dev1ce")
        try:
            for refused in sources:  # anonymous, wrong password
                refused.start()
                wait_until(lambda r=refused: r.last_error and "refused" in r.last_error)
                assert refused.state is SourceState.DISCONNECTED
            source.start()
            wait_until(lambda: source.state is SourceState.CONNECTED)
            device.connect("127.0.0.1", broker.port)
            device.loop_start()
            t = live.clock.now()
            for seq, chair in enumerate(["c01", "c02", "c01"], start=1):  # c02 is not its chair
                device.publish(VITALS.format(chair), payload(seq=seq, t=t + seq, device="rad97-0012",
                                                             hr=70 + seq), qos=1).wait_for_publish(TIMEOUT)
            wait_until(lambda: count(live, "c1") == 2)
            assert source.messages == 2 and count(live, "c2") == 0  # the broker dropped it
            assert source.health()["seq_gaps"] == 1
        finally:
            device.disconnect()
            device.loop_stop()
            for s in [*sources, source]:
                s.stop()


def make_certs(folder: Path) -> dict[str, Path]:
    """A throw-away CA, a broker certificate for 127.0.0.1 and a client certificate."""
    folder.mkdir(parents=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=TIMEOUT)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test-ca")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("broker", "monitor"):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                *(["-extfile", "san.ext"] if name == "broker" else []))
    return {n: folder / n for n in ("ca.crt", "broker.crt", "broker.key", "monitor.crt", "monitor.key")}


def test_tls_with_client_certificates(live, tmp_path):
    certs = make_certs(tmp_path / "certs")
    listener = (f"cafile {certs['ca.crt']}\ncertfile {certs['broker.crt']}\nkeyfile {certs['broker.key']}\n"
                "require_certificate true\n")
    with Mosquitto(tmp_path / "tls-broker", listener=listener) as broker:
        cfg = {"kind": "mqtt", "name": "broker1", "port": broker.port, "reconnect_max_s": 1}
        source = MqttSource(MqttConfig.model_validate(cfg | {
            "tls_ca": certs["ca.crt"], "tls_cert": certs["monitor.crt"], "tls_key": certs["monitor.key"]}),
            live.monitor)
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ox-tls", protocol=mqtt.MQTTv311)
        device.tls_set(ca_certs=str(certs["ca.crt"]), certfile=str(certs["monitor.crt"]),
                       keyfile=str(certs["monitor.key"]))
        try:
            source.start()
            wait_until(lambda: source.state is SourceState.CONNECTED)
            assert source.health()["broker"]["tls"] is True
            device.connect("127.0.0.1", broker.port)
            device.loop_start()
            device.publish(VITALS.format("c1"), payload(t=live.clock.now(), hr=66),
                           qos=1).wait_for_publish(TIMEOUT)
            wait_until(lambda: count(live) == 1)
        finally:
            device.disconnect()
            device.loop_stop()
            source.stop()


# paho leaves the TLS socket of a failed handshake to the garbage collector (paho's leak, not ours)
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_tls_with_the_wrong_ca_is_refused(live, tmp_path):
    certs = make_certs(tmp_path / "certs")
    other = make_certs(tmp_path / "other")  # a CA the broker's certificate is not signed by
    listener = (f"cafile {certs['ca.crt']}\ncertfile {certs['broker.crt']}\nkeyfile {certs['broker.key']}\n"
                "require_certificate true\n")
    with Mosquitto(tmp_path / "tls-broker", listener=listener) as broker:
        cfg = {"kind": "mqtt", "name": "broker1", "port": broker.port, "reconnect_max_s": 1,
               "tls_ca": other["ca.crt"], "tls_cert": other["monitor.crt"], "tls_key": other["monitor.key"]}
        source = MqttSource(MqttConfig.model_validate(cfg), live.monitor)
        try:
            source.start()
            wait_until(lambda: source.last_error is not None, what="a TLS failure")
            assert source.state is not SourceState.CONNECTED
            assert "certificate verify failed" in source.last_error
        finally:
            source.stop()
        assert count(live) == 0


def test_unusable_tls_files_fail_the_source_at_start(live, tmp_path):
    config = MqttConfig.model_validate({"kind": "mqtt", "name": "broker1", "port": free_port(),
                                        "tls_ca": tmp_path / "missing-ca.crt"})
    source = MqttSource(config, live.monitor)
    source.start()
    assert source.state is SourceState.FAILED and "configuration" in (source.last_error or "")
    source.stop()
    assert source.state is SourceState.STOPPED


def test_a_source_started_before_its_broker_connects_when_it_comes(live, make_source, broker):
    broker.stop()
    source = make_source(start=False)
    source.start()
    wait_until(lambda: source.state is SourceState.DISCONNECTED, what="DISCONNECTED (no broker)")
    broker.start()
    wait_until(lambda: source.state is SourceState.CONNECTED, what="connected once the broker is up")
    started = time.monotonic()
    source.stop()
    assert time.monotonic() - started < scaled(STOP_TIMEOUT_S) and source.state is SourceState.STOPPED


# --- the monitor's own link: session takeover, broker crash ----------------------------------


def healthz(harness: Harness, source: MqttSource) -> Any:
    from flask import Flask

    from dashboard.api import install_api
    from dashboard.live import LiveBay

    app = Flask("test")
    install_api(app, LiveBay(harness.monitor, [source], max_age=0))
    return app.test_client().get("/healthz")


def link_alarms(harness: Harness) -> dict[str, Any]:
    return {a.chair: a for a in harness.monitor.open_alarms()
            if a.code == "LINK_DOWN" and a.rule.startswith("offline_link:")}


def test_a_session_takeover_is_a_technical_alarm_on_every_chair_until_the_link_is_back(
        live, make_source, broker, pub, monkeypatch):
    monkeypatch.setattr(mqtt_source, "LINK_STABLE_S", 1.0)
    for chair in ("c1", "c2"):
        live.monitor.start_session(chair, f"MRN-{chair}", "nurse.ann")
    source = make_source()
    # someone else connects with the monitor's client id: the broker hands them the session
    rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chairside-test", protocol=mqtt.MQTTv5)
    rogue.connect("127.0.0.1", broker.port)
    rogue.loop_start()
    try:
        wait_until(lambda: set(link_alarms(live)) == {"c1", "c2"}, TIMEOUT,
                   "a link alarm on every monitored chair of the bay")
        alarm = link_alarms(live)["c1"]
        assert alarm.kind.value == "technical" and alarm.message == "Monitor link lost (MQTT broker)"
        assert "broker1" in live.monitor.source_problems
        assert source.health()["link_ok"] is False
        health = healthz(live, source)
        assert health.status_code == 503 and health.get_json()["status"] == "degraded"
        assert "broker1" in health.get_json()["source_problems"]
    finally:
        rogue.disconnect()
        rogue.loop_stop()
    # the monitor gets its session back; once the link has held, the alarms clear
    wait_until(lambda: source.state is SourceState.CONNECTED, TIMEOUT, "reconnected")
    wait_until(lambda: not link_alarms(live), TIMEOUT, "link alarms cleared")
    assert live.monitor.source_problems == {} and source.health()["link_ok"] is True
    assert healthz(live, source).status_code == 200
    pub.send(VITALS.format("c1"), payload(seq=1, t=live.clock.now(), hr=70))
    wait_until(lambda: count(live) == 1, what="data flows again")


def test_the_deployment_config_makes_the_monitors_client_id_its_own(live, tmp_path):
    """use_username_as_clientid: a device account connecting as "chairside-monitor" gets its
    own account name as client id and cannot take the monitor's session over."""
    (tmp_path / "monitor.pw").write_text("m0n1tor\n")
    with deploy_broker(tmp_path / "deployed") as broker:
        source = MqttSource(MqttConfig.model_validate({
            "kind": "mqtt", "name": "broker1", "port": broker.port, "reconnect_max_s": 1,
            "username": "chairside-monitor", "client_id": "chairside-monitor",
            "password_file": tmp_path / "monitor.pw", "chairs": {"c01": "c1"}}), live.monitor)
        source.start()
        intruders = []
        try:
            wait_until(lambda: source.state is SourceState.CONNECTED, TIMEOUT, "monitor connected")
            for _ in range(5):
                c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chairside-monitor",
                                protocol=mqtt.MQTTv5)
                c.username_pw_set("rad97-0012", "dev1ce")
                c.connect("127.0.0.1", broker.port)
                c.loop_start()
                intruders.append(c)
                wait_until(c.is_connected, TIMEOUT, "intruder connected (as its own client id)")
                t = live.clock.now()
                c.publish(VITALS.format("c01"), payload(seq=len(intruders), t=t, device="rad97-0012",
                                                        hr=70), qos=1).wait_for_publish(TIMEOUT)
            wait_until(lambda: count(live, "c1") == 5, TIMEOUT, "every reading reached the monitor")
            assert source.reconnects == 0 and source.health()["unexpected_disconnects"] == 0
            assert source.link_problem is None
        finally:
            for c in intruders:
                c.disconnect()
                c.loop_stop()
            source.stop()


def test_the_deployment_config_keeps_queued_messages_across_a_broker_crash(live, tmp_path):
    """Messages queued for the absent monitor survive a kill -9 of the broker once its
    autosave (5 s in deploy/mosquitto.conf) has written them."""
    (tmp_path / "monitor.pw").write_text("m0n1tor\n")
    broker = deploy_broker(tmp_path / "deployed").start()
    try:
        cfg = MqttConfig.model_validate({
            "kind": "mqtt", "name": "broker1", "port": broker.port, "reconnect_max_s": 1,
            "username": "chairside-monitor", "client_id": "chairside-monitor",
            "password_file": tmp_path / "monitor.pw", "chairs": {"c01": "c1"}})
        first = MqttSource(cfg, live.monitor)
        first.start()  # the persistent session, then away
        wait_until(lambda: first.state is SourceState.CONNECTED, TIMEOUT, "session made")
        first.stop()
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rad97-0012", protocol=mqtt.MQTTv311)
        device.username_pw_set("rad97-0012", "dev1ce")
        device.connect("127.0.0.1", broker.port)
        device.loop_start()
        t = live.clock.now()
        for seq in range(1, 21):
            device.publish(VITALS.format("c01"), payload(seq=seq, t=t + seq / 10, device="rad97-0012",
                                                         hr=60 + seq), qos=1).wait_for_publish(TIMEOUT)
        device.disconnect()
        device.loop_stop()
        saved = broker.data / "chairside.db"
        published = time.time()
        wait_until(lambda: saved.exists() and saved.stat().st_mtime > published + 0.01, TIMEOUT,
                   "an autosave after the last publish")
        broker.kill()
        broker.start()
        second = MqttSource(cfg, live.monitor)
        second.start()
        try:
            wait_until(lambda: count(live, "c1") == 20, TIMEOUT, "all 20 delivered after the crash")
        finally:
            second.stop()
    finally:
        broker.stop()


def gap_alarms(harness: Harness, chair: str = "c1") -> list[Any]:
    return [a for a in harness.monitor.open_alarms() if a.code == "DATA_GAP" and a.chair == chair]


def test_messages_lost_in_a_broker_crash_are_a_gap_alarm_naming_how_many(live, make_source, broker):
    """The broker accepted 100 messages for the absent monitor and crashed (kill -9) before
    saving them: the monitor, restarted too, knows the device's last seq from its store and
    raises a technical alarm naming the 100 the moment the device's next message arrives."""
    live.monitor.start_session("c1", "MRN-1", "nurse.ann")
    first = make_source()
    device = Publisher(broker.port, client_id="ox-1-device")
    t = live.clock.now()
    for seq in range(1, 6):
        device.send(VITALS.format("c1"), payload(seq=seq, t=t + seq / 10, hr=70))
    wait_until(lambda: count(live) == 5, what="the first five stored")
    first.stop()
    for seq in range(6, 106):  # queued for the absent monitor ...
        device.send(VITALS.format("c1"), payload(seq=seq, t=t + seq / 10, hr=70))
    device.close()
    broker.kill()  # ... and lost: the broker had not saved them
    broker.start()
    live.restart()
    second = make_source()
    assert gap_alarms(live) == []
    device = Publisher(broker.port, client_id="ox-1-device")
    try:
        device.send(VITALS.format("c1"), payload(seq=106, t=t + 10.6, hr=71))
        wait_until(lambda: gap_alarms(live), TIMEOUT, "the gap alarm")
    finally:
        device.close()
    (alarm,) = gap_alarms(live)
    assert alarm.kind.value == "technical"
    assert alarm.message == "100 readings lost in transmission"
    live.flush()
    assert second.health()["missing_seqs"] == 100 and count(live) == 6
    # acknowledged, it is over (the readings cannot come back)
    live.monitor.acknowledge(alarm.id, "nurse.ann")
    assert gap_alarms(live) == []
