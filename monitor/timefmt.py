"""RFC 3339 times in UTC, the one format every edge of the project speaks."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_rfc3339", "rfc3339"]


def rfc3339(t: float | None) -> str | None:
    """UNIX seconds to ``2026-11-23T19:40:01.250Z`` (milliseconds, UTC)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> float:
    """An RFC 3339 time with an offset (``Z`` or ``+hh:mm``) to UNIX seconds.
    Raises ValueError for a time without an offset or one that does not parse."""
    value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return value.timestamp()
