"""The seam types of the wire formats: what a parser returns (:class:`Frame`) or raises
(:class:`ParseError`). Dependency-free, so that every layer can import them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Frame", "ParseError"]


class ParseError(ValueError):
    """A frame (line, message, payload) that cannot be taken.

    ``reason`` is a short stable key for the counters (``checksum``, ``malformed``,
    ``bad_value``, ``too_long``, ``not_utf8``, ``bad_json``, ...); the message says more.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    """What a parser makes of one frame: values by parameter key (None: no value), quality
    flags, and whatever identity and time the frame itself carries."""

    values: dict[str, float | None]
    flags: int = 0
    device: str | None = None
    seq: int | None = None
    time: float | None = None  # device time, UNIX seconds (only when the frame has a zone)
    extra: dict[str, Any] = field(default_factory=dict)  # dialect fields kept for display
