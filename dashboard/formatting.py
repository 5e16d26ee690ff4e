"""How the dashboard writes times and alarms: a value's age (``8 s``), a duration
(``4:07``), a wall-clock time and date in the bay's zone (:func:`set_display_zone`), and an
alarm's message with its priority marker. Pure: each is tested without a browser or server."""

from __future__ import annotations

from datetime import datetime, tzinfo

from monitor.localtime import machine_zone
from monitor.records import Alarm

__all__ = ["alarm_text", "display_zone", "fmt_age", "fmt_clock", "fmt_date", "fmt_duration",
           "set_display_zone"]


def fmt_age(seconds: float | None) -> str:
    """``8 s``, ``4 min``, ``2 h 05``: how old a value is, short enough for a tile."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d}"


def fmt_duration(seconds: float) -> str:
    """``4:07`` or ``1:02:07`` (negative: ``-0:30``)."""
    sign = "-" if seconds < 0 else ""
    s = abs(int(seconds))
    if s >= 3600:
        return f"{sign}{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{sign}{s // 60}:{s % 60:02d}"


_zone: tzinfo | None = None  # the bay's zone ([bay] timezone), set by dashboard.live.LiveBay


def set_display_zone(zone: tzinfo | None) -> None:
    """The zone the dashboard shows times in (None: the machine's); one bay per process."""
    global _zone
    _zone = zone


def display_zone() -> tzinfo:
    return _zone if _zone is not None else machine_zone()


def fmt_clock(t: float | None, seconds: bool = True, tz: tzinfo | None = None) -> str:
    """Wall-clock time of UNIX seconds ``t`` in ``tz`` (default: the bay's zone,
    :func:`set_display_zone`), so a server running in UTC shows the bay's time: ``14:03:22``."""
    if t is None:
        return ""
    return datetime.fromtimestamp(t, tz or display_zone()).strftime("%H:%M:%S" if seconds else "%H:%M")


def fmt_date(t: float, tz: tzinfo | None = None) -> str:
    """The date of ``t`` in ``tz`` (default: the bay's zone): ``2027-01-15``."""
    return datetime.fromtimestamp(t, tz or display_zone()).strftime("%Y-%m-%d")


def alarm_text(alarm: Alarm) -> str:
    """The message with its IEC 60601-1-8 priority prefix: ``** SpO2 86 < 90``."""
    return f"{alarm.priority.marker} {alarm.message}"
