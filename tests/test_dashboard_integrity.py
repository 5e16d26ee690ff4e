"""Data-path failures on the bay screen, in a real headless Chromium (issue 11): a store
that cannot write is a bay-wide alarm on every screen, and it sounds."""

from __future__ import annotations

from conftest import wait_until
from test_data_integrity import _fill_the_disk
from ui_support import click, js, start


def test_a_full_disk_shows_recording_stopped_on_the_screen_and_sounds(make_bay, dash_duo):
    bay = make_bay(chairs=2)
    bay.second({"c01": {"spo2": 97, "hr": 72}})
    start(dash_duo, bay)
    click(dash_duo, "#sound-enable")
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "silent", 5, "a quiet bay")
    assert not dash_duo.find_element("#bay-alarm").is_displayed()
    _fill_the_disk(bay.monitor.store, True)
    bay.monitor.ingest([bay.reading("c01", "spo2", 97)._replace(device=f"ox-{i}-" + "9" * 3000)
                        for i in range(50)])
    dash_duo.wait_for_contains_text("#bay-alarm", "RECORDING STOPPED: disk full", timeout=10)
    assert dash_duo.find_element("#bay-alarm").is_displayed()
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "medium", 5, "the tone")
    _fill_the_disk(bay.monitor.store, False)
    wait_until(lambda: not dash_duo.find_element("#bay-alarm").is_displayed(), 15, "recording again")
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "silent", 5, "quiet again")
