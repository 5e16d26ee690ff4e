"""The chaos scenario of issue 16 (bench/chaos.py), shortened: 24 chairs (MQTT through a
three-node RabbitMQ or NATS cluster, HL7 gateways, serial devices behind socat terminal servers) served
by two real ``chairside run`` with ``[ha] enabled`` on a private PostgreSQL, while the
leader is killed, the broker node it uses is killed, its database connection is cut and a
terminal server's link goes down and comes back. After each fault: every chair is live again
on the bay screen, the leadership faults were taken over by the other server, and no
message of MQTT or HL7 is lost or stored twice, nor any serial line stored twice. The
times are reported by the benchmark (docs/performance.md), never asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import CLUSTERS, FAULTS, run


@pytest.mark.parametrize("broker", list(CLUSTERS))
def test_24_chairs_through_every_fault_lose_and_duplicate_nothing(broker: str, tmp_path: Path) -> None:
    report = run(tmp_path, chairs=24, settle_s=4, broker=broker)
    assert report["device_failures"] == []
    assert list(report["faults"]) == list(FAULTS)
    for kind, fault in report["faults"].items():
        assert fault["lost"] == 0 and fault["duplicated"] == 0, (kind, fault)
        assert fault["recovered_s"] > 0, (kind, fault)
        if kind in ("leader_kill", "db_connection_cut"):
            assert "takeover_s" in fault, (kind, fault)
        assert {"mqtt", "hl7", "serial"} <= set(fault["transports"]), (kind, fault)
    assert report["faults"]["db_connection_cut"]["sessions_cut"] == 1
    assert report["lost"] == report["duplicated"] == report["never_sent"] == 0, report
    assert report["stored"] + report["serial_unread"] == report["sent"]
