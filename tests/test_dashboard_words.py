"""Issue 14 point 4 on the screen: a tile truncates a long alarm text and carries the full
text of every open alarm in its tooltip (the ``title`` attribute), in real Chromium."""

from __future__ import annotations

from conftest import wait_until
from ui_support import js, start, tile_text

NIBP_LOW = {"nibp_sys": 75, "nibp_dia": 40, "nibp_map": 50}
FULL_NIBP = "*** NIBP 75/40 mmHg (MAP 50): sys 75 < 80, MAP 50 < 65"


def test_a_truncated_tile_alarm_shows_the_full_text_of_every_alarm_in_its_tooltip(make_bay, dash_duo):
    bay = make_bay(chairs=3)
    for _ in range(16):  # SpO2 86 past its 15 s delay: a medium alarm
        bay.second({"c01": {"spo2": 86, "hr": 74}})
    bay.second({"c01": {"spo2": 86, "hr": 74, **NIBP_LOW}})  # one cuff cycle: a high alarm
    start(dash_duo, bay)
    dash_duo.driver.set_window_size(700, 900)  # a narrow window: the long text cannot fit
    sel = ".tile[data-chair='c01'] .alarm-text"
    wait_until(lambda: tile_text(dash_duo, "c01", "alarm-text") == FULL_NIBP, 5, "the NIBP alarm on the tile")
    # the tooltip: every open alarm of the chair, in full, most urgent first
    wait_until(lambda: dash_duo.find_element(sel).get_attribute("title")
               == f"{FULL_NIBP}\n** SpO2 86 % < 90 %", 5, "the full texts in the tooltip")
    # the text itself is cut with an ellipsis (the element holds more than it shows)
    assert js(dash_duo, f'var e = document.querySelector("{sel}"); '
                        'return getComputedStyle(e).textOverflow === "ellipsis"'
                        ' && e.scrollWidth > e.clientWidth')
