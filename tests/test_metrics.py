"""GET /metrics (Prometheus text format) and the store and adapter checks of GET /healthz,
against a real core on a real SQLite file."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import Harness
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from dashboard.api import install_api
from dashboard.live import LiveBay
from dashboard.metrics import ClientTracker, StoreCheck
from devices.source import SourceBase
from monitor.seam import SourceState


class FakeSource(SourceBase):
    kind = "fake"


@pytest.fixture
def bay(harness: Harness):
    source = FakeSource("mon-1", harness.monitor)
    live = LiveBay(harness.monitor, [source], max_age=60)
    app = Flask("test")
    install_api(app, live)
    return app.test_client(), source


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    assert answer.headers["Cache-Control"] == "no-store"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.get_data(as_text=True))
            for s in family.samples}


def test_metrics_count_readings_rejections_alarms_and_adapters(harness, bay):
    client, source = bay
    harness.feed("spo2", 97, seconds=2)
    harness.feed("nibp_sys", 210)  # a high priority alarm
    harness.feed("spo2", 86, chair="c2", seconds=16)  # a medium one (past its 15 s delay)
    harness.monitor.ingest([harness.reading("spo2", 500), harness.reading("spo2", 97, chair="c9"),
                            harness.reading("spo2", math.nan)])
    (medium,) = [a for a in harness.monitor.open_alarms() if a.chair == "c2"]
    harness.monitor.acknowledge(medium.id, "nurse.ann")
    source._set_state(SourceState.CONNECTED)
    source.reconnects = 2
    source.reject("checksum", "bad frame")
    harness.flush()

    m = scrape(client)
    assert m[("chairside_readings_accepted_total", ())] == 19
    assert m[("chairside_readings_rejected_total", (("reason", "implausible"),))] == 1
    assert m[("chairside_readings_rejected_total", (("reason", "unknown_chair"),))] == 1
    assert m[("chairside_readings_rejected_total", (("reason", "not_finite"),))] == 1
    assert m[("chairside_readings_rejected_total", (("reason", "too_old"),))] == 0  # every reason
    alarms = {k[1]: v for k, v in m.items() if k[0] == "chairside_alarms_open" and v}
    assert alarms == {
        (("kind", "physiological"), ("priority", "high"), ("state", "active")): 1,
        (("kind", "physiological"), ("priority", "medium"), ("state", "acknowledged")): 1,
    }
    quiet = (("kind", "technical"), ("priority", "low"), ("state", "paused"))
    assert m[("chairside_alarms_open", quiet)] == 0  # every combination, 0 too
    adapter = (("kind", "fake"), ("source", "mon-1"))
    assert m[("chairside_source_up", adapter)] == 1
    assert m[("chairside_source_reconnects_total", adapter)] == 2
    frames = (("kind", "fake"), ("reason", "checksum"), ("source", "mon-1"))
    assert m[("chairside_frames_rejected_total", frames)] == 1
    assert m[("chairside_store_writer_up", ())] == 1
    assert m[("chairside_store_pending_rows", ())] == 0
    assert m[("chairside_store_failed_batches_total", ())] == 0
    assert m[("chairside_store_batches_total", ())] >= 1
    assert 0 < m[("chairside_store_commit_seconds", ())] < 10
    assert m[("chairside_dashboard_clients", ())] == 0
    (build,) = [dict(labels) for name, labels in m if name == "chairside_build_info"]
    assert build["version"]

    source._set_state(SourceState.DISCONNECTED, "cable")
    assert scrape(client)[("chairside_source_up", adapter)] == 0


def test_each_app_has_its_own_registry(harness, bay):
    client, _ = bay
    other = Flask("other")
    install_api(other, LiveBay(harness.monitor))  # would clash on the global registry
    harness.feed("hr", 70)
    assert scrape(other.test_client())[("chairside_readings_accepted_total", ())] == 1
    assert ("chairside_source_up", (("kind", "fake"), ("source", "mon-1"))) in scrape(client)


def test_healthz_200_while_the_store_writes(harness, bay):
    client, _ = bay
    answer = client.get("/healthz")
    body = answer.get_json()
    assert answer.status_code == 200 and body["store_writable"] is True and body["status"] == "ok"
    assert {"bay", "adapters", "store", "readings_accepted", "readings_rejected"} <= set(body)
    assert body["adapters"][0]["state"] == "stopped"


def test_healthz_503_when_the_store_is_closed(harness, bay):
    client, _ = bay
    harness.monitor.store.close()
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.headers["Cache-Control"] == "no-store"
    body = answer.get_json()
    assert body["store_writable"] is False and body["status"] == "degraded"
    assert body["store"]["writer_alive"] is False and body["adapters"][0]["name"] == "mon-1"
    assert scrape(client)[("chairside_store_writer_up", ())] == 0


def test_healthz_503_while_commits_fail_and_200_once_one_succeeds(harness, bay, monkeypatch):
    client, _ = bay
    store = harness.monitor.store
    stats = store.stats() | {"pending": 0}
    monkeypatch.setattr(store, "stats", lambda: dict(stats))
    assert client.get("/healthz").status_code == 200
    stats.update(failed_batches=stats["failed_batches"] + 1, pending=7)  # a commit failed
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.get_json()["store_writable"] is False
    stats.update(batches=stats["batches"] + 1, pending=0)  # the retry committed
    assert client.get("/healthz").status_code == 200


def test_healthz_503_when_an_adapter_failed(bay):
    client, source = bay
    source._set_state(SourceState.FAILED, "no such port")
    answer = client.get("/healthz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["store_writable"] is True and body["adapters"][0]["state"] == "failed"


def test_store_check_first_look_and_writer_death():
    check = StoreCheck()
    well = {"writer_alive": True, "batches": 3, "failed_batches": 2, "pending": 5}
    assert check.writable(well)  # failures before the first look may be long over
    assert not check.writable(well | {"failed_batches": 3})
    assert check.writable(well | {"failed_batches": 3, "pending": 0})  # nothing waits to be written
    assert check.writable(well | {"failed_batches": 3, "batches": 4})
    assert not check.writable(well | {"batches": 4, "writer_alive": False})


def test_client_tracker_counts_distinct_tabs_within_the_window():
    now = [100.0]
    tabs = ClientTracker(window=10, limit=3, clock=lambda: now[0])
    tabs.seen("a")
    tabs.seen("b")
    tabs.seen("a")  # the same tab again
    assert tabs.count() == 2
    now[0] += 6
    tabs.seen("b")
    now[0] += 6  # a last polled 12 s ago, b 6 s ago
    assert tabs.count() == 1
    for tab in "cdef":
        tabs.seen(tab)
    assert tabs.count() == 3  # made-up ids cannot grow it past its limit


def test_dashboard_tabs_are_counted_by_their_push_stream(harness):
    from push_support import events, new_tab

    from dashboard.app import create_app

    app = create_app(LiveBay(harness.monitor))
    client = app.server.test_client()
    first, second = new_tab(), new_tab()
    events(client, tab=first)
    events(client, tab=second)
    events(client, tab=first)  # the same tab, reconnected: still one
    events(client, query="tab=forged&sound=off")  # an id that is not one: shown, not counted
    events(client, query="tab=" + "0" * 31 + "g")
    assert scrape(client)[("chairside_dashboard_clients", ())] == 2


def test_seq_gaps_and_missing_messages_are_counted(harness):
    class GappySource(FakeSource):
        def health(self) -> dict[str, Any]:
            return super().health() | {"seq_gaps": 2, "missing_seqs": 107}

    live = LiveBay(harness.monitor, [GappySource("broker1", harness.monitor)], max_age=60)
    app = Flask("test")
    install_api(app, live)
    got = scrape(app.test_client())
    labels = (("kind", "fake"), ("source", "broker1"))
    assert got[("chairside_seq_gaps_total", labels)] == 2
    assert got[("chairside_messages_missing_total", labels)] == 107
