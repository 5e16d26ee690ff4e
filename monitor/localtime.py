"""Local time for people, UTC for machines.

Chairside stores and exchanges every time in UTC (:mod:`monitor.timefmt`: the CSV files,
FHIR, HL7, the HTTP API). What people read — the PDF report, the dashboard's clock and alarm
times — is local time in the bay's zone, ``[bay] timezone`` in the configuration (an IANA
name such as ``"Europe/Berlin"``; default: the machine's own zone), and names that zone.

    zone_from_name("Europe/Berlin")   -> ZoneInfo, or ValueError naming the bad name
    machine_zone()                    -> the machine's zone (TZ, /etc/localtime, /etc/timezone)
    LocalClock(zone, start, end)      -> the times of one document: "14:03:22", "14:03 CET",
                                         "2027-01-15 14:03:22 CET", "Times are Europe/Berlin (UTC+01:00)"
"""

from __future__ import annotations

import difflib
import functools
import os
import time
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

__all__ = ["LocalClock", "abbreviation", "machine_zone", "offset_text", "zone_from_name", "zone_name"]

_HINT = "an IANA time zone name such as 'Europe/Berlin', 'America/New_York' or 'UTC'"


@functools.cache
def _known() -> frozenset[str]:
    # the IANA names this machine has (system zoneinfo and the tzdata package); not the
    # right/ (leap second) and posix/ copies, which available_timezones() leaves out
    return frozenset(available_timezones())


def zone_from_name(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError naming the value (and a close match) if none."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"must be {_HINT} (got {name!r})")
    if name not in _known():
        close = difflib.get_close_matches(name, _known(), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown time zone {name!r}{hint}: use {_HINT}")
    return ZoneInfo(name)


class _SystemZone(tzinfo):
    """The machine's zone as the C library has it, for a ``TZ`` that is a POSIX rule
    (``CET-1CEST,M3.5.0,M10.5.0/3``) rather than a name: offsets from ``time.localtime``."""

    def fromutc(self, dt: datetime) -> datetime:
        ts = dt.replace(tzinfo=UTC).timestamp()
        return dt + timedelta(seconds=time.localtime(ts).tm_gmtoff)

    def _at(self, dt: datetime) -> time.struct_time:  # the local wall time dt, as it was
        return time.localtime(time.mktime(dt.replace(tzinfo=None).timetuple()))

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None if dt is None else timedelta(seconds=self._at(dt).tm_gmtoff)

    def tzname(self, dt: datetime | None) -> str | None:
        return None if dt is None else self._at(dt).tm_zone

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def __repr__(self) -> str:
        return "_SystemZone()"


def _zone_of_machine() -> tzinfo:
    tz = os.environ.get("TZ")
    if tz is not None:  # the C library follows TZ first, and so do we
        name = tz.removeprefix(":")
        if name.startswith("/") and Path(name).is_file():
            with open(name, "rb") as fh:
                return ZoneInfo.from_file(fh, key="localtime")
        try:
            return zone_from_name(name or "UTC")
        except ValueError:
            return _SystemZone()
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve(strict=True))
    except OSError:
        return ZoneInfo("UTC")  # the C library's default without /etc/localtime
    if "/zoneinfo/" in target:
        name = target.split("/zoneinfo/", 1)[1]
        if name in _known():
            return ZoneInfo(name)
    try:
        name = Path("/etc/timezone").read_text(encoding="utf-8").strip()  # Debian
        if name in _known():
            return ZoneInfo(name)
    except OSError:
        pass
    with open(localtime, "rb") as fh:
        return ZoneInfo.from_file(fh, key="localtime")


@functools.cache
def machine_zone() -> tzinfo:
    """The machine's own zone, named when it can be (``TZ``, the ``/etc/localtime`` link,
    Debian's ``/etc/timezone``); read once per process."""
    return _zone_of_machine()


def zone_name(zone: tzinfo) -> str:
    """``Europe/Berlin``; ``the machine's local zone`` for a zone without an IANA name."""
    key = getattr(zone, "key", None)
    return key if key and key != "localtime" else "the machine's local zone"


def offset_text(offset: timedelta | None) -> str:
    """``UTC+01:00``, ``UTC-05:00``, ``UTC+05:30``."""
    minutes = round((offset or timedelta()).total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def abbreviation(d: datetime) -> str:
    """The zone's short name at aware ``d``: ``CET``, ``EDT``, ``IST``; where the zone has
    none (tzdata writes ``-03``) its offset, ``UTC-03:00``."""
    name = d.tzname() or ""
    if not name or name[0] in "+-" or name[0].isdigit():
        return offset_text(d.utcoffset())
    return name


class LocalClock:
    """The times of one document (a report from ``start`` to ``end``) in ``zone``.

    ``mixed``: the zone's offset changed within the document (a daylight saving change):
    then every time carries its abbreviation, since the same clock time may occur twice."""

    def __init__(self, zone: tzinfo, start: float, end: float) -> None:
        self.zone = zone
        end = max(end, start)
        step = max(3600.0, (end - start) / 1000)  # zone changes are months apart
        samples = [start + i * step for i in range(int((end - start) // step) + 1)] + [end]
        seen: dict[timedelta | None, str] = {}
        for t in samples:
            d = self.local(t)
            seen.setdefault(d.utcoffset(), abbreviation(d))
        self.offsets = list(seen)
        self.abbreviations = list(dict.fromkeys(seen.values()))
        self.mixed = len(self.offsets) > 1

    def local(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self.zone)

    @property
    def label(self) -> str:
        """``CET``; ``CET/CEST`` when the offset changed within the document."""
        return "/".join(self.abbreviations)

    def clock(self, t: float | None, seconds: bool = True, named: bool = False) -> str:
        """``14:03:22`` (in a table whose header names the zone); ``14:03:22 CET`` when
        ``named`` or :attr:`mixed`; ``—`` for no time."""
        if t is None:
            return "—"
        d = self.local(t)
        text = d.strftime("%H:%M:%S" if seconds else "%H:%M")
        return f"{text} {abbreviation(d)}" if named or self.mixed else text

    def stamp(self, t: float | None) -> str:
        """``2027-01-15 14:03:22 CET``."""
        if t is None:
            return "—"
        d = self.local(t)
        return f"{d:%Y-%m-%d %H:%M:%S} {abbreviation(d)}"

    def date(self, t: float) -> str:
        """``Friday 15 January 2027`` (the local date)."""
        return f"{self.local(t):%A %d %B %Y}"

    def describe(self) -> str:
        """``Times are Europe/Berlin (UTC+01:00)``; with a change within the document
        ``Times are Europe/Berlin (UTC+01:00, then UTC+02:00)``."""
        offsets = ", then ".join(offset_text(o) for o in self.offsets)
        return f"Times are {zone_name(self.zone)} ({offsets})"
