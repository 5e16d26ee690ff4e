"""The site view (issue 15): every bay of the unit on one read-only screen for the charge nurse.

Pure summaries (monitor.site.summarize) and cards (dashboard.site_view) with explicit times;
the source over real SQLite stores in tmp_path written through their public add_records;
the push stream through Flask's test client; the page in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import T0, Harness, bay_config, scaled, wait_until
from push_support import Stream
from test_auth import AuthBay
from ui_support import click

from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.site_view import card_class, card_view, site_view
from monitor.clock import ManualClock
from monitor.records import Alarm, AlarmEvent, AlarmKind, AlarmState, Priority, Session, SessionState
from monitor.site import BayRef, StoresSiteSource, summarize, unreachable
from monitor.store import SqliteStore

A = BayRef("bay-a", "Infusion bay A", "/?bay=bay-a")
B = BayRef("bay-b", "Infusion bay B", "/?bay=bay-b")
SITE_STREAM = "/live/site-stream"


def alarm(id: int, state: AlarmState = AlarmState.ACTIVE, chair: str = "c1", *,
          priority: Priority = Priority.HIGH, kind: AlarmKind = AlarmKind.PHYSIOLOGICAL,
          raised_at: float = T0, message: str = "SpO2 86 < 90", **kw: Any) -> Alarm:
    return Alarm(id=id, chair=chair, code="SPO2_LOW" if kind is AlarmKind.PHYSIOLOGICAL else "SENSOR_OFF",
                 rule=f"r{id}", kind=kind, priority=priority, state=state, message=message,
                 raised_at=raised_at, updated_at=raised_at, **kw)


def raised(a: Alarm) -> AlarmEvent:
    return AlarmEvent(a.updated_at, a.chair, a.id, None, a.state, a, None, "raised")


def session(id: str, chair: str, state: SessionState = SessionState.INFUSING) -> Session:
    return Session(id=id, chair=chair, patient="MRN 1", protocol="", drug="Fe", dose="200 mg",
                   planned_minutes=30.0, nibp_interval_s=None, observation_minutes=30, state=state,
                   started_at=T0, started_by="ann", updated_at=T0)


def tech(id: int, chair: str = "c2", **kw: Any) -> Alarm:
    return alarm(id, chair=chair, kind=AlarmKind.TECHNICAL, message="SpO2 sensor off",
                 **{"priority": Priority.MEDIUM, **kw})


# --- the summary: pure ------------------------------------------------------------------------


def test_open_clinical_alarms_are_counted_by_priority_and_technical_problems_listed_apart():
    alarms = [alarm(1), alarm(2, AlarmState.ACKNOWLEDGED, "c2"), alarm(3, priority=Priority.MEDIUM),
              alarm(4, priority=Priority.LOW, chair="c3"), tech(5), alarm(6, AlarmState.CLEARED),
              tech(7, "c4", state=AlarmState.ACKNOWLEDGED, priority=Priority.LOW)]
    s = summarize(A, alarms, [], T0 + 60)
    assert s.reachable and s.as_of == T0 + 60 and s.ref == A
    assert dict(s.clinical) == {Priority.HIGH: 2, Priority.MEDIUM: 1, Priority.LOW: 1}  # not the cleared
    assert dict(s.clinical_unacknowledged) == {Priority.HIGH: 1, Priority.MEDIUM: 1, Priority.LOW: 1}
    assert [(t.chair, t.message, t.priority, t.acknowledged) for t in s.technical] == [
        ("c2", "SpO2 sensor off", Priority.MEDIUM, False), ("c4", "SpO2 sensor off", Priority.LOW, True)]
    assert s.open_alarms == 6


def test_the_oldest_unacknowledged_alarm_ignores_acknowledged_and_cleared_ones():
    alarms = [alarm(1, AlarmState.ACKNOWLEDGED, raised_at=T0), alarm(2, AlarmState.CLEARED, raised_at=T0 + 1),
              alarm(3, chair="c3", priority=Priority.MEDIUM, raised_at=T0 + 5, message="HR 131 > 130"),
              alarm(4, AlarmState.PAUSED, chair="c4", raised_at=T0 + 9), tech(5, raised_at=T0 + 7)]
    oldest = summarize(A, alarms, [], T0 + 100).oldest_unacknowledged
    assert oldest is not None
    assert (oldest.chair, oldest.message, oldest.priority, oldest.since) == ("c3", "HR 131 > 130",
                                                                             Priority.MEDIUM, T0 + 5)
    # a technical alarm waits for a nurse too, as do a paused and a latched one
    assert summarize(A, alarms[3:], [], T0).oldest_unacknowledged.chair == "c2"  # (T0 + 7)
    assert summarize(A, alarms[3:4], [], T0).oldest_unacknowledged.chair == "c4"  # paused
    latched = alarm(8, AlarmState.LATCHED, chair="c5")
    assert summarize(A, [latched], [], T0).oldest_unacknowledged.chair == "c5"
    assert summarize(A, alarms[:2], [], T0).oldest_unacknowledged is None


def test_chairs_in_use_are_the_chairs_with_an_open_session():
    sessions = [session("s1", "c1"), session("s2", "c2", SessionState.OBSERVATION),
                session("s3", "c3", SessionState.ENDED)]
    s = summarize(A, [], sessions, T0)
    assert s.chairs_in_use == 2 and s.open_alarms == 0 and s.oldest_unacknowledged is None


def test_a_bay_id_must_fit_the_view_keys():
    with pytest.raises(ValueError, match="bay id"):
        BayRef("a|b", "A", "/")
    with pytest.raises(ValueError, match="bay id"):
        BayRef("", "A", "/")


# --- the card: pure ---------------------------------------------------------------------------


def test_the_card_flashes_as_the_bay_tile_does():
    def cls(*alarms: Alarm) -> str:
        return card_class(summarize(A, alarms, [], T0))

    assert cls() == "site-card"
    assert cls(alarm(1)) == "site-card alarm-high flash-high"
    assert cls(alarm(1, AlarmState.ACKNOWLEDGED), alarm(2, priority=Priority.MEDIUM)) == \
        "site-card alarm-high acked"  # the top priority is all acknowledged: steady
    assert cls(alarm(1, priority=Priority.MEDIUM)) == "site-card alarm-medium flash-medium"
    assert cls(alarm(1, priority=Priority.LOW)) == "site-card alarm-low"  # low never flashes
    assert cls(tech(1)) == "site-card alarm-medium flash-medium tech"
    assert cls(tech(1), alarm(2, priority=Priority.MEDIUM)) == "site-card alarm-medium flash-medium"


def test_the_card_says_what_waits_and_for_how_long():
    s = summarize(A, [alarm(1, chair="c3", raised_at=T0), tech(2, raised_at=T0 + 30)],
                  [session("s1", "c3")], T0 + 250)
    view = card_view(s, T0 + 250)
    assert view["chairs"] == "1 chair in use"
    assert (view["high"], view["medium"], view["low"]) == ("*** 1", "** 0", "* 0")
    assert view["high_cls"] == "site-count prio-high" and view["medium_cls"] == "site-count prio-medium zero"
    assert view["tech"] == "Technical: c2 ** SpO2 sensor off"
    assert view["oldest"] == "Waiting longest: c3 *** SpO2 86 < 90, 4 min ago"
    full = site_view([s, summarize(B, [], [], T0)], T0 + 250)
    assert full["bay-a|oldest"] == view["oldest"] and full["bay-b|oldest"] == "No alarm waiting"
    assert full["bay-b|tech"] == "No technical problems" and full["as_of"].startswith("As of ")


def test_an_unreachable_bay_shows_its_reason_and_no_numbers():
    s = unreachable(B, "StoreError: connection refused", T0)
    assert not s.reachable and s.open_alarms == 0
    view = card_view(s, T0)
    assert view["card_cls"] == "site-card unreachable"
    assert view["status"] == "UNREACHABLE: StoreError: connection refused"
    assert view["high"] == "–" and view["oldest"] == ""


# --- the source: real SQLite stores -----------------------------------------------------------


def open_store(path: Path) -> SqliteStore:
    store = SqliteStore(path, commit_interval=0.01)
    store.start()
    return store


@pytest.fixture
def stores(tmp_path: Path):
    opened = [open_store(tmp_path / "bay-a.db"), open_store(tmp_path / "bay-b.db")]
    yield opened
    for store in opened:
        store.close()


def write(store: SqliteStore, *records: Any) -> None:
    store.add_records(list(records))
    assert store.flush(timeout=10)


def test_the_source_summarises_every_bay_from_its_store_in_order(stores):
    a, b = stores
    clock = ManualClock(T0 + 90)
    write(a, raised(alarm(1, chair="c2")), session("s1", "c1"), session("s2", "c2"))
    write(b, raised(tech(1, chair="c5")))
    site = StoresSiteSource([(A, a), (B, b)], clock=clock)
    got = site.summaries()
    assert [s.ref for s in got] == [A, B] and all(s.as_of == T0 + 90 for s in got)
    assert got[0].chairs_in_use == 2 and got[0].clinical[Priority.HIGH] == 1
    assert got[0].oldest_unacknowledged.chair == "c2"
    assert got[1].clinical[Priority.HIGH] == 0 and [t.chair for t in got[1].technical] == ["c5"]


def test_a_bay_whose_store_fails_is_shown_unreachable_and_the_others_still_are(stores):
    a, b = stores
    write(b, raised(alarm(1)))
    site = StoresSiteSource([(A, a), (B, b)], clock=ManualClock(T0))
    a.close()  # its database gone: every read raises
    got = site.summaries()
    assert not got[0].reachable and "closed" in got[0].error and got[0].error.startswith("StoreError")
    assert got[1].reachable and got[1].clinical[Priority.HIGH] == 1
    assert site.wait_change(0) is True  # (the first call)


def test_wait_change_wakes_for_a_new_alarm_an_acknowledgement_and_a_session(stores):
    a, b = stores
    site = StoresSiteSource([(A, a), (B, b)], poll_s=0.02)
    assert site.wait_change(0) is True  # the first call: whatever there is is new
    assert site.wait_change(0.05) is False  # nothing happened
    first = alarm(1, chair="c3")
    write(b, raised(first))
    assert site.wait_change(60) is True
    assert site.wait_change(0) is False
    acked = alarm(1, AlarmState.ACKNOWLEDGED, chair="c3", acknowledged_by="cat")
    write(b, AlarmEvent(T0 + 5, "c3", 1, AlarmState.ACTIVE, acked.state, acked, "cat", "acknowledged"))
    assert site.wait_change(60) is True  # the same alarm id, a new state
    write(a, session("s9", "c1"))
    assert site.wait_change(60) is True
    assert site.summaries()[0].chairs_in_use == 1


def test_close_ends_a_wait_at_once(stores):
    site = StoresSiteSource([(A, stores[0])], poll_s=3600)
    site.wait_change(0)
    site.close()
    assert site.wait_change(3600) is False  # returns: the poll is cut short


# --- the stream: Flask's test client ----------------------------------------------------------


def next_event(stream: Stream) -> dict[str, Any]:
    got = stream.next()
    assert got is not None, "the stream ended"
    return got[1] if got[0] == "message" else {}


def test_an_alarm_written_into_bay_b_reaches_the_site_stream(harness: Harness, stores):
    a, b = stores
    site = StoresSiteSource([(A, a), (B, b)], poll_s=0.05, clock=harness.clock)
    live = LiveBay(harness.monitor, site=site)
    client = create_app(live).server.test_client()
    with Stream(client, path=SITE_STREAM, query="") as stream:
        first = next_event(stream)
        assert first["bay-a|high"] == first["bay-b|high"] == "*** 0"
        assert first["bay-b|card_cls"] == "site-card"
        write(b, raised(alarm(1, chair="c4")))
        seen: dict[str, str] = {}

        def flashing() -> bool:
            change = next_event(stream)
            assert "bay-a|high" not in change  # only what changed is sent
            seen.update(change)
            return seen.get("bay-b|card_cls") == "site-card alarm-high flash-high"

        wait_until(flashing, 10, "bay B's alarm on the site stream")
        assert seen["bay-b|high"] == "*** 1" and seen["bay-b|oldest"].startswith("Waiting longest: c4 ***")
    wait_until(lambda: live.site_feed.streams == 0, 10, "the stream closed")


def test_without_a_site_source_there_is_no_site_view(harness: Harness):
    app = create_app(LiveBay(harness.monitor))
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/site").status_code == 404 and client.get(SITE_STREAM).status_code == 404
    assert "nav-site" not in client.get("/_dash-layout").get_data(as_text=True)


def page_content(client: Any, path: str) -> str:
    """A page's content, as Dash's page routing fetches it (the wall display may ask too)."""
    answer = client.post("/_dash-update-component", json={
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [{"id": "_pages_content", "property": "children"},
                    {"id": "_pages_store", "property": "data"}],
        "inputs": [{"id": "_pages_location", "property": "pathname", "value": path},
                   {"id": "_pages_location", "property": "search", "value": ""}],
        "state": [], "changedPropIds": ["_pages_location.pathname"]})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_data(as_text=True)


def test_the_site_view_needs_a_login_of_any_role_and_is_not_the_wall_displays(tmp_path, stores):
    site = StoresSiteSource([(A, stores[0]), (B, stores[1])], poll_s=0.05)
    b = AuthBay(tmp_path, site=site, wall_display=True)
    try:
        nobody = b.server.test_client()
        nobody.environ_base["REMOTE_ADDR"] = "192.0.2.1"  # not the wall display's address
        answer = nobody.get("/site")
        assert answer.status_code == 302 and answer.headers["Location"] == "/login?next=/site"
        assert nobody.get(SITE_STREAM).status_code == 401
        wall = b.client()  # loopback: the wall display sees the bay, not the site
        assert wall.get("/").status_code == 200
        assert wall.get("/site").status_code == 302 and wall.get(SITE_STREAM).status_code == 401
        assert "nav-site" not in wall.get("/_dash-layout").get_data(as_text=True)
        shown = page_content(wall, "/site")  # asked for by hand: no bay in it
        assert "needs a login" in shown and "Infusion bay B" not in shown and "site-card" not in shown
        for user in ("ann", "cat", "adm"):  # nurse, charge, admin
            client = b.client(user)
            assert client.get("/site").status_code == 200, user
            assert "nav-site" in client.get("/_dash-layout").get_data(as_text=True)
            shown = page_content(client, "/site")
            assert "Infusion bay B" in shown and "site-card" in shown and '"Button"' not in shown
            with Stream(client, path=SITE_STREAM, query="") as stream:
                assert next_event(stream)["bay-b|high"] == "*** 0"
    finally:
        b.h.monitor.close()


# --- the screen: headless Chromium -----------------------------------------------------------


def test_the_site_page_shows_every_bay_live_read_only_and_links_to_each(make_bay, dash_duo, tmp_path):
    bay = make_bay(chairs=2)  # the bay whose server shows the site
    a, b = open_store(tmp_path / "bay-a.db"), open_store(tmp_path / "bay-b.db")
    try:
        write(a, session("s1", "c1"), session("s2", "c2"))
        site = StoresSiteSource([(A, a), (B, b)], poll_s=0.1, clock=bay.clock)
        for _ in range(20):  # a medium alarm with its pop-up on the hosting bay (15 s delay)
            bay.second({"c01": {"spo2": 86, "hr": 72}})
        dash_duo.start_server(create_app(LiveBay(bay.monitor, site=site)))
        dash_duo.wait_for_element(".popup", timeout=10)  # the bay's pop-up, with its buttons
        click(dash_duo, "#sound-enable")  # (the bar covers the header until then)
        wait_until(lambda: not dash_duo.find_element("#sound-enable").is_displayed(), 5, "the header's links")
        click(dash_duo, "#nav-site")
        dash_duo.wait_for_element(".site-page #site-grid", timeout=10)
        cards = dash_duo.find_elements(".site-card")
        assert [c.get_attribute("data-bay") for c in cards] == ["bay-a", "bay-b"]  # in the site's order
        dash_duo.wait_for_text_to_equal(".site-card[data-bay='bay-a'] [data-sf='bay-a|chairs']",
                                        "2 chairs in use", timeout=10)
        assert dash_duo.find_element(".site-card[data-bay='bay-b']").get_attribute("class") == "site-card"

        events = dash_duo.driver.execute_script("return window.chairsideSite.events")
        write(b, raised(alarm(1, chair="c4", message="SpO2 85 < 90")))
        dash_duo.wait_for_contains_class(".site-card[data-bay='bay-b']", "flash-high", timeout=10)
        dash_duo.wait_for_text_to_equal("[data-sf='bay-b|high']", "*** 1", timeout=5)
        assert "c4 *** SpO2 85 < 90" in dash_duo.find_element("[data-sf='bay-b|oldest']").text
        assert "flash" not in dash_duo.find_element(".site-card[data-bay='bay-a']").get_attribute("class")
        assert dash_duo.driver.execute_script("return window.chairsideSite.events") > events  # pushed

        # read-only: no control on the page, and the hosting bay's pop-ups (and their buttons) hidden
        assert not dash_duo.find_elements(".site-page button, .site-page input, .site-page form, "
                                          ".site-page select, .site-page textarea")
        assert dash_duo.find_elements("#popups .btn-ack")  # there, on the bay's screens ...
        assert not [e for e in dash_duo.find_elements("#popups button") if e.is_displayed()]  # ... not here

        a.close()  # bay A's database goes away: its card says so, bay B's stays
        dash_duo.wait_for_contains_class(".site-card[data-bay='bay-a']", "unreachable", timeout=10)
        assert "UNREACHABLE" in dash_duo.find_element("[data-sf='bay-a|status']").text

        link = dash_duo.find_element(".site-card[data-bay='bay-b'] a.site-bay-link")
        assert link.text == "Infusion bay B" and link.get_attribute("href").endswith("/?bay=bay-b")
        link.click()
        wait_until(lambda: dash_duo.driver.current_url.endswith("/?bay=bay-b"), 10, "bay B's screen")
        dash_duo.wait_for_element(".tile[data-chair='c01']", timeout=10)
        assert not [e for e in dash_duo.get_logs() if e["source"] == "javascript"]  # no script error
    finally:
        a.close()
        b.close()


# ---- PostgreSQL: the bays of one database, woken by LISTEN/NOTIFY -----------------------
def test_the_postgresql_source_lists_every_bay_and_wakes_on_its_notify(pg_backend):
    from monitor.bay_store import bay_database
    from monitor.config_sections import StoreSection
    from monitor.site_postgres import PgSiteSource

    site = pg_backend
    section = StoreSection.model_validate(site.section)
    neuro = site.open("neuro", bay_name="Neurology day unit", bay_url="https://neuro.example.org/")
    onco = site.open("onco", bay_name="Oncology infusion")
    source = PgSiteSource(bay_database(section, "onco"))
    try:
        neuro.start()
        assert source.wait_change(0) is True  # the first call: read at once
        cards = {s.ref.id: s for s in source.summaries()}
        assert set(cards) == {"neuro", "onco"} and cards["neuro"].ref.url == "https://neuro.example.org/"
        assert cards["neuro"].reachable and cards["neuro"].open_alarms == 0
        assert source.wait_change(0.05) is False  # quiet: no notification, no change
        neuro.add_records([raised(alarm(1, chair="c3"))])
        assert source.wait_change(scaled(2)) is True  # woken by the commit's NOTIFY
        card = {s.ref.id: s for s in source.summaries()}["neuro"]
        assert card.open_alarms == 1 and card.clinical[Priority.HIGH] == 1
        assert card.oldest_unacknowledged is not None and card.oldest_unacknowledged.chair == "c3"
    finally:
        source.close()
        neuro.close()
        onco.close()


def test_a_bay_on_postgresql_serves_the_site_view_of_its_database(pg_backend, tmp_path):
    from station.service import BayService

    db = pg_backend
    db.open("onco", bay_name="Oncology infusion").close()  # another bay of the unit
    config = bay_config(tmp_path, store=db.section, bay={"id": "neuro", "name": "Neurology",
                                                         "url": "https://neuro.example.org/"})
    with BayService(config) as service:
        app = create_app(LiveBay(service.monitor, service.sources, site=service.site))
        page = app.server.test_client().get("/site")
        assert page.status_code == 200
        names = [s.ref.name for s in service.site.summaries()]  # type: ignore[union-attr]
        assert names == ["Neurology", "Oncology infusion"]
