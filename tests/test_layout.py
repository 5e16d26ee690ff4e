"""The bay screen at every size (issue 14, point 3), in headless Chromium against the real app:
a 1366x768 laptop, a 1920x1080 wall screen and a 3840x2160 (4K) wall screen, each with 8, 24
and 48 chairs. Measured in the DOM: nothing overflows its box, the header and the alarm
pop-ups fit the screen, and the numbers are large enough to read across the bay."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from conftest import wait_until
from test_dashboard_ui import populate
from ui_support import click, js, screenshot, set_nurse, start

SIZES = [(1920, 1080), (3840, 2160), (1366, 768)]  # (1080p first: the 4K one is compared with it)

#: The smallest font sizes (px) at 1920x1080, by chair count: HR and SpO2, NIBP.
MINIMUM_1080P = {8: (48, 24), 24: (48, 24), 48: (36, 24)}

# what must stay inside its box: the values, labels and texts of the tiles, the header's
# parts, the pop-ups' texts and buttons
OVERFLOW_JS = """
const inside = (e, box) => {
    const r = e.getBoundingClientRect();
    return r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1
        && r.bottom <= box.bottom + 1;
};
const clipped = e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).textOverflow !== 'ellipsis';
const visible = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
const bad = [];
for (const e of document.querySelectorAll(
        '.tile .val, .tile .nibp-map, .tile .news, .tile .chair-name, .tile .vhead, .tile .conn, '
        + '.tile .sub-line, .tile .proto, .tile .alarmbar, .tile .spark')) {
    if (!visible(e)) continue;
    const cell = (e.closest('.vital') || e.closest('.tile')).getBoundingClientRect();
    const tile = e.closest('.tile').getBoundingClientRect();
    const r = e.getBoundingClientRect();
    if (clipped(e) || r.right > cell.right + 1 || r.left < cell.left - 1 || r.bottom > tile.bottom + 1
            || r.top < tile.top - 1 || (e.closest(".vital") && r.bottom > cell.bottom + 1))
        bad.push('tile: ' + e.className + ' ' + e.textContent);
}
const hdr = document.querySelector('.hdr').getBoundingClientRect();
for (const e of document.querySelectorAll('.hdr > *, .hdr .nav-link, .hdr .nurse-input, .hdr .sound-state')) {
    if (!visible(e) || e.id === 'sound-enable') continue;
    if (!inside(e, hdr) || clipped(e)) bad.push('header: ' + e.className + ' ' + e.textContent);
}
for (const p of document.querySelectorAll('.popup, .popup-more')) {
    if (!inside(p, {left: 0, top: 0, right: innerWidth, bottom: innerHeight}))
        bad.push('popup off screen: ' + p.textContent);
    const box = p.getBoundingClientRect();
    for (const e of p.querySelectorAll('*')) {
        if (!visible(e)) continue;
        if (!inside(e, box) || clipped(e)) bad.push('popup: ' + e.className + ' ' + e.textContent);
    }
}
return bad;
"""

SIZES_JS = """
const px = sel => [...document.querySelectorAll(sel)].filter(e => e.getClientRects().length)
    .map(e => parseFloat(getComputedStyle(e).fontSize));
return {hr: px('.tile .val-hr'), spo2: px('.tile .val-spo2'), nibp: px('.tile .val-nibp'),
        hdr: document.querySelector('.hdr').getBoundingClientRect().toJSON(),
        hdr_scroll: document.querySelector('.hdr').scrollWidth,
        page_width: document.documentElement.scrollWidth};
"""

# what every tile shows whole at every size, however many chairs: its name and connection,
# the labels and values of HR/PR, SpO2, NIBP and NEWS2, and its alarm bar (secondary text,
# e.g. the sparklines, the drug and the session's phase, may give way)
ESSENTIAL_JS = """
const shown = e => e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
const whole = e => shown(e) && e.scrollWidth <= e.clientWidth + 1;
const bad = [];
for (const t of document.querySelectorAll('.tile')) {
    const parts = {name: '.chair-name', conn: '.conn', 'HR/PR': '.val-hr', spo2: '.val-spo2',
                   nibp: '.val-nibp', news: '.news'};
    for (const [what, sel] of Object.entries(parts))
        if (!whole(t.querySelector(sel))) bad.push(t.dataset.chair + ' ' + what);
    for (const v of t.querySelectorAll('.vital'))
        if (!whole(v.querySelector('.vlabel'))) bad.push(t.dataset.chair + ' label of ' + v.className);
    if (!shown(t.querySelector('.alarmbar'))) bad.push(t.dataset.chair + ' alarm bar');
}
return bad;
"""

TILES_JS = """
return [...document.querySelectorAll('.tile')].map(t => t.getBoundingClientRect().toJSON());
"""


def viewport(dash_duo: Any, width: int, height: int) -> None:
    dash_duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    wait_until(lambda: js(dash_duo, "return [innerWidth, innerHeight]") == [width, height], 5,
               f"a {width}x{height} viewport")


@pytest.mark.parametrize("chairs", [8, 24, 48])
@pytest.mark.screenshots
def test_the_bay_fits_and_reads_at_every_size(make_bay, dash_duo, chairs, shots):
    bay = make_bay(chairs=chairs, start=time.time() - 300)
    populate(bay, minutes=5)
    assert {a.priority.label for a in bay.monitor.open_alarms()} >= {"high", "medium"}
    start(dash_duo, bay)
    click(dash_duo, "#sound-enable")
    set_nurse(dash_duo, "Anna Berg")
    wait_until(lambda: js(dash_duo, "return [...document.querySelectorAll('img.spark')].every(i => i.src)"),
               30, "sparklines drawn")
    dash_duo.wait_for_element(".popup", timeout=10)
    assert len(dash_duo.find_elements(".tile")) == chairs
    for width, height in SIZES:
        viewport(dash_duo, width, height)
        # every tile on the screen, none overlapping the header or the pop-ups
        boxes = js(dash_duo, TILES_JS)  # (one query: a WebDriver call per tile is slow at 48)
        popups_top = js(dash_duo, "return Math.min(...[...document.querySelectorAll('.popup')]"
                                  ".map(p => p.getBoundingClientRect().top))")  # (one query: they re-render)
        header_bottom = js(dash_duo, "return document.querySelector('.hdr').getBoundingClientRect().bottom")
        assert len(boxes) == chairs and all(
            b["left"] >= 0 and b["top"] >= header_bottom and b["right"] <= width and b["bottom"] <= popups_top
            for b in boxes), (width, height)
        overflowing = js(dash_duo, OVERFLOW_JS)
        assert overflowing == [], (width, height, Counter(o.split(" ", 2)[1] for o in overflowing),
                                   overflowing[:5])
        assert js(dash_duo, ESSENTIAL_JS) == [], (width, height)
        sizes = js(dash_duo, SIZES_JS)
        # the whole header shows: as wide as the screen, nothing cut off, no sideways scrolling
        assert sizes["hdr"]["width"] <= width and sizes["hdr_scroll"] <= width, (width, sizes)
        assert sizes["page_width"] <= width
        assert len(sizes["hr"]) + len(sizes["spo2"]) >= chairs  # (oximeter-only chairs: SpO2 only)
        if (width, height) == (1920, 1080):
            big, nibp = MINIMUM_1080P[chairs]
            assert min(sizes["hr"] + sizes["spo2"]) >= big, sizes
            assert min(sizes["nibp"]) >= nibp, sizes
            at_1080p = sizes
        if width == 3840:  # the 4K wall screen scales up
            assert min(sizes["hr"] + sizes["spo2"]) > min(at_1080p["hr"] + at_1080p["spo2"])
            assert min(sizes["nibp"]) > min(at_1080p["nibp"])
            assert sizes["hdr"]["height"] > at_1080p["hdr"]["height"]
        # (a screen that missed updates for 6 s says so over the bay, e.g. while a 4K re-layout of
        # 48 tiles keeps the page busy: the picture waits for the next update)
        wait_until(lambda: not js(dash_duo, "return document.body.classList.contains('disconnected')"),
                   30, "the screen updating again")
        screenshot(dash_duo, shots, f"overview-{chairs}-{width}x{height}.png")
    assert not [e for e in dash_duo.get_logs() if "favicon" not in e.get("message", "")]
