"""Running a bay: the core plus the threads around it (the ticker; adapters come here too).

``BayService`` owns the lifetime: start restores the core from the store and starts the
ticker; stop stops them in reverse and flushes the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from devices.registry import make_source
from monitor.bay_store import bay_database, open_bay_store
from monitor.clock import Clock
from monitor.config import BayConfig
from monitor.core import Monitor
from monitor.seam import Source
from monitor.site import SiteSource

__all__ = ["BayService", "Ticker"]

log = logging.getLogger("chairside.service")


class Ticker:
    """Calls ``monitor.tick()`` every ``interval`` seconds on a thread of its own."""

    def __init__(self, monitor: Monitor, interval: float = 1.0) -> None:
        self._monitor = monitor
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chairside-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._monitor.tick()
            except Exception:  # a bug in one tick must not stop the alarms for good
                log.exception("tick failed")


class BayService:
    """``site``: the unit's bays for the read-only site view (:mod:`monitor.site`); the web
    serves ``/site`` when given it (``LiveBay(..., site=service.site)``). None: no site view."""

    def __init__(self, config: BayConfig, clock: Clock | None = None, site: SiteSource | None = None) -> None:
        self.config = config
        if site is None and config.store.url is not None:  # PostgreSQL: the unit's other bays
            from monitor.site_postgres import PgSiteSource

            site = PgSiteSource(bay_database(config.store, config.bay.id))
        self.site = site
        store = open_bay_store(config.store, config.bay.id, bay_name=config.bay.name, bay_url=config.bay.url)
        self.monitor = Monitor(config, store=store, clock=clock)
        self._ticker = Ticker(self.monitor)
        self.sources: list[Source] = [make_source(s, self.monitor) for s in config.sources]
        self._stopped = False

    def start(self, check: Callable[[], None] = lambda: None) -> None:
        """Restore the core, then start the ticker and each source. ``check`` is called
        between these steps and may raise to interrupt the start (a stop request): then, as
        after any failure, what has started is stopped again, in reverse, and it re-raises."""
        try:
            check()
            self.monitor.start()
            check()
            self._ticker.start()
            for source in self.sources:
                check()
                source.start()
        except BaseException:
            self.stop()
            raise
        log.info("bay %s running with %d chairs and %d sources", self.config.bay.id,
                 len(self.config.chairs), len(self.sources))
        if not self.sources:
            log.warning("no [[sources]] configured: no device will be read")

    def stop(self) -> None:
        """Stop the sources (last started first), the ticker and the core; flush the store.
        Idempotent, and safe after a start that stopped half-way."""
        if self._stopped:
            return
        self._stopped = True
        for source in reversed(self.sources):
            try:
                source.stop()
            except Exception:
                log.exception("stopping source %s failed", source.name)
        self._ticker.stop()
        if self.site is not None and hasattr(self.site, "close"):
            self.site.close()  # (a wait on it ends at once)
        self.monitor.close()
        log.info("bay %s stopped", self.config.bay.id)

    def __enter__(self) -> BayService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
