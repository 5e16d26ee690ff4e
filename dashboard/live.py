"""The running bay as the web side sees it: one per server process.

Every API client reads through :meth:`LiveBay.snapshot`, which asks the core for the bay's
state at most once per ``max_age`` seconds and shares the answer; the screens get the bay
pushed by one :class:`~dashboard.push.BayFeed` (``LiveBay.feed``), so ten open tabs cost
the core what one does. Actions go straight to the core's entry points.

With a site source (``site``: every bay of the unit, :mod:`monitor.site`) the app also
serves the read-only site view (``/site``), pushed by one
:class:`~dashboard.site_push.SiteFeed` (``LiveBay.site_feed``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dashboard.figures import set_display_zone
from monitor.config import BayConfig
from monitor.core import ChairStatus, Monitor
from monitor.seam import Source
from monitor.site import SiteSource

if TYPE_CHECKING:
    from dashboard.push import BayFeed
    from dashboard.site_push import SiteFeed

__all__ = ["BaySnapshot", "LiveBay"]


@dataclass(frozen=True, slots=True)
class BaySnapshot:
    time: float  # the core's clock when it was taken
    chairs: tuple[ChairStatus, ...]

    def chair(self, chair: str) -> ChairStatus | None:
        return next((c for c in self.chairs if c.chair == chair), None)


class LiveBay:
    def __init__(self, monitor: Monitor, sources: list[Source] | None = None,
                 max_age: float = 0.5, site: SiteSource | None = None, role: str = "leader") -> None:
        self.monitor = monitor
        self.role = role  # "leader": this server serves the bay (the only one, or the leading one)
        self.sources = list(sources or [])
        self.site = site  # the unit's bays, for the site view (None: no site view)
        self.max_age = max_age
        self._lock = threading.Lock()
        self._snapshot: BaySnapshot | None = None
        self._taken = 0.0  # time.monotonic() of the snapshot
        self.snapshots_taken = 0  # how often the core was asked (one per max_age at most)
        self._feed: BayFeed | None = None
        self._site_feed: SiteFeed | None = None
        set_display_zone(monitor.config.bay.zone)  # the clock and alarm times: the bay's time

    @property
    def feed(self) -> BayFeed:
        """The push channel's view of the bay (made on first use)."""
        with self._lock:
            if self._feed is None:
                from dashboard.push import BayFeed  # push builds on this module
                self._feed = BayFeed(self)
            return self._feed

    @property
    def site_feed(self) -> SiteFeed | None:
        """The push channel's view of the site (made on first use; None without a site)."""
        if self.site is None:
            return None
        with self._lock:
            if self._site_feed is None:
                from dashboard.site_push import SiteFeed  # site_push builds on this module
                self._site_feed = SiteFeed(self.site, self.monitor.clock.now)
            return self._site_feed

    @property
    def config(self) -> BayConfig:
        return self.monitor.config

    def snapshot(self, max_age: float | None = None) -> BaySnapshot:
        """The bay's state, at most ``max_age`` (default: the bay's) seconds old."""
        max_age = self.max_age if max_age is None else max_age
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._taken >= max_age:
                now = self.monitor.clock.now()
                chairs = tuple(self.monitor.status(c) for c in self.monitor.chair_ids)
                self._snapshot = BaySnapshot(now, chairs)
                self._taken = time.monotonic()
                self.snapshots_taken += 1
            return self._snapshot

    def invalidate(self) -> None:
        """After an operator action: the next read shows its effect at once, and the
        screens are told."""
        with self._lock:
            self._snapshot = None
            feed = self._feed
        if feed is not None:
            feed.changed()

    def recording_problem(self) -> str | None:
        """What stops the bay being recorded, for every screen to show: the store cannot
        write (a full or failing disk), or its writer has stopped. None while all is well."""
        stats = self.monitor.store_stats()
        if stats is None:
            return None
        if not stats.get("writer_alive", True):
            return "RECORDING STOPPED: the database writer has stopped (restart Chairside)"
        failing = stats.get("failing")
        if failing:
            what = "disk full" if "full" in failing.lower() else failing
            return (f"RECORDING STOPPED: {what}. {stats.get('pending', 0)} rows wait in memory"
                    + (f", {stats['readings_dropped']} readings dropped" if stats.get("readings_dropped")
                       else ""))
        return None

    def health(self) -> dict[str, Any]:
        store_stats = self.monitor.store_stats()
        writing = store_stats is None or store_stats.get("writer_alive", True)
        return {
            "status": "ok" if writing and not self.monitor.source_problems else "degraded",
            "source_problems": dict(self.monitor.source_problems),
            "bay": self.config.bay.id,
            "role": self.role,
            "adapters": [s.health() for s in self.sources],
            "store": store_stats,
            "readings_accepted": self.monitor.accepted,
            "readings_rejected": dict(self.monitor.rejections.counts),
        }
