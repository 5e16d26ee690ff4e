"""Local time for people (monitor.localtime): the bay's zone, the machine's zone, and the
times of one document with the zone named. Known answers, not recomputed with zoneinfo."""

from __future__ import annotations

import time
import zoneinfo
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
from conftest import T0

from monitor.localtime import (
    LocalClock,
    _SystemZone,
    _zone_of_machine,
    offset_text,
    zone_from_name,
    zone_name,
)

JULY = T0 + 180 * 86400  # 2027-07-14 08:00:00 UTC


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_a_report_in_one_zone_names_it_once_and_in_prose():
    clock = LocalClock(zone_from_name("Asia/Kolkata"), T0, T0 + 1500)  # 2027-01-15 08:00 UTC
    assert not clock.mixed and clock.label == "IST"
    assert clock.describe() == "Times are Asia/Kolkata (UTC+05:30)"
    assert clock.clock(T0) == "13:30:00" and clock.clock(T0 + 120, seconds=False) == "13:32"
    assert clock.clock(T0, named=True) == "13:30:00 IST" and clock.clock(None) == "—"
    assert clock.stamp(T0 + 1500) == "2027-01-15 13:55:00 IST" and clock.date(T0) == "Friday 15 January 2027"
    ny = LocalClock(zone_from_name("America/New_York"), T0, T0 + 60)
    assert ny.stamp(T0) == "2027-01-15 03:00:00 EST"
    assert ny.describe() == "Times are America/New_York (UTC-05:00)"
    late = LocalClock(zone_from_name("Pacific/Pago_Pago"), T0, T0 + 60)  # the date differs from UTC's
    assert late.stamp(T0) == "2027-01-14 21:00:00 SST" and late.date(T0) == "Thursday 14 January 2027"


def test_a_zone_without_abbreviations_shows_its_offset():
    clock = LocalClock(zone_from_name("America/Sao_Paulo"), T0, T0 + 60)  # tzdata writes "-03"
    assert clock.stamp(T0) == "2027-01-15 05:00:00 UTC-03:00" and clock.label == "UTC-03:00"
    assert [offset_text(LocalClock(zone_from_name(z), T0, T0).local(T0).utcoffset())
            for z in ("UTC", "Asia/Kathmandu", "America/St_Johns")] == ["UTC+00:00", "UTC+05:45", "UTC-03:30"]


def test_a_daylight_saving_change_within_a_report_puts_the_zone_on_every_time():
    # Europe/Berlin springs forward at 2027-03-28 01:00 UTC (02:00 CET -> 03:00 CEST)
    start, end = utc(2027, 3, 28, 0, 30), utc(2027, 3, 28, 2)
    clock = LocalClock(zone_from_name("Europe/Berlin"), start, end)
    assert clock.mixed and clock.label == "CET/CEST"
    assert clock.describe() == "Times are Europe/Berlin (UTC+01:00, then UTC+02:00)"
    assert [clock.clock(t) for t in (start, utc(2027, 3, 28, 0, 59, 59), utc(2027, 3, 28, 1), end)] == [
        "01:30:00 CET", "01:59:59 CET", "03:00:00 CEST", "04:00:00 CEST"]
    # falling back: the same clock time twice, told apart by the abbreviation
    clock = LocalClock(zone_from_name("Europe/Berlin"), utc(2027, 10, 31, 0), utc(2027, 10, 31, 2))
    assert [clock.clock(utc(2027, 10, 31, h, 30)) for h in (0, 1)] == ["02:30:00 CEST", "02:30:00 CET"]
    # a long report finds a change between its ends even when the ends share an offset
    assert LocalClock(zone_from_name("Europe/Berlin"), utc(2027, 3, 20), utc(2027, 11, 20)).mixed


@pytest.mark.parametrize("name", ["Europe/Berln", "CET-1CEST,M3.5.0,M10.5.0/3", "/etc/localtime", "../x",
                                  "right/UTC", "posix/Europe/Berlin", "Europe", " UTC", ""])
def test_only_iana_names_are_zones(name):
    with pytest.raises(ValueError, match=r"time zone name such as 'Europe/Berlin'") as info:
        zone_from_name(name)
    assert repr(name) in str(info.value)


@pytest.fixture
def tz_env(monkeypatch):
    """Set TZ for this process (and the C library) during one test."""
    def set_tz(value: str) -> None:
        monkeypatch.setenv("TZ", value)
        time.tzset()
    yield set_tz
    monkeypatch.undo()
    time.tzset()


def test_the_machine_zone_follows_tz_by_name_and_by_file(tz_env):
    for value, key in (("Asia/Kolkata", "Asia/Kolkata"), (":America/New_York", "America/New_York"),
                       ("", "UTC")):
        tz_env(value)
        zone = _zone_of_machine()
        assert zone_name(zone) == key
        assert datetime.fromtimestamp(T0, zone).utcoffset().total_seconds() == time.localtime(T0).tm_gmtoff
    path = next((Path(d) / "Europe/Berlin" for d in zoneinfo.TZPATH if (Path(d) / "Europe/Berlin").is_file()),
                None) or resources.files("tzdata").joinpath("zoneinfo/Europe/Berlin")  # system, or PyPI's
    tz_env(str(path))
    zone = _zone_of_machine()
    assert zone_name(zone) == "the machine's local zone"  # a file, not a name
    assert [datetime.fromtimestamp(t, zone).strftime("%H:%M %Z") for t in (T0, JULY)] == [
        "09:00 CET", "10:00 CEST"]


def test_a_posix_tz_rule_is_followed_through_the_c_library(tz_env):
    tz_env("CET-1CEST,M3.5.0,M10.5.0/3")  # no IANA name: the C library's offsets, summer and winter
    zone = _zone_of_machine()
    assert isinstance(zone, _SystemZone) and zone_name(zone) == "the machine's local zone"
    assert [datetime.fromtimestamp(t, zone).strftime("%H:%M %Z %z") for t in (T0, JULY)] == [
        "09:00 CET +0100", "10:00 CEST +0200"]
    assert LocalClock(zone, T0, T0 + 60).describe() == "Times are the machine's local zone (UTC+01:00)"
    assert LocalClock(zone, T0, JULY).mixed
