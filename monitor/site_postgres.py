"""The site view's source on PostgreSQL: every bay registered in ``chairside_site.bays``,
each read through a :class:`~monitor.store.postgres.BayReader` on its schema, woken by
``LISTEN chairside_site`` (each bay's writer sends ``NOTIFY chairside_site, '<bay>'`` with
every commit that carries alarm events or session changes), so a change reaches the charge
nurse's screen at once and a quiet unit costs no queries. A database out of reach shows as
every bay unreachable, with the reason, until it answers again.
"""

from __future__ import annotations

import logging
import threading

from monitor.clock import Clock, SystemClock
from monitor.site import BayRef, BaySummary, summarize, unreachable
from monitor.store.db import SITE_CHANNEL, DbError, PgDatabase, PgDb
from monitor.store.postgres import BayReader

__all__ = ["PgSiteSource"]

log = logging.getLogger("monitor.site")


class PgSiteSource:
    """:class:`~monitor.site.SiteSource` on a PostgreSQL site (``database``: any bay's)."""

    RETRY_S = 1.0  # between attempts to listen again while the database is away

    def __init__(self, database: PgDatabase, clock: Clock | None = None) -> None:
        self.database = database
        self.clock = clock or SystemClock()
        self._readers: dict[str, BayReader] = {}
        self._listener: PgDb | None = None
        self._first = True
        self._closed = threading.Event()

    def summaries(self) -> list[BaySummary]:
        now = self.clock.now()
        try:
            with self.database.reader() as db:
                rows = db.execute("SELECT id, name, coalesce(url, ''), schema_name FROM chairside_site.bays "
                                  "ORDER BY name, id").fetchall()
        except DbError as exc:
            ref = BayRef(self.database.bay, self.database.bay, "")
            return [unreachable(ref, f"the site's database: {exc.reason}", now)]
        out = []
        for bay, name, url, schema in rows:
            ref = BayRef(bay, name, url)
            reader = self._readers.get(bay)
            if reader is None:
                reader = self._readers[bay] = BayReader(self.database.for_bay(bay, schema))
            try:
                out.append(summarize(ref, reader.open_alarms(), reader.open_sessions(), now))
            except DbError as exc:
                out.append(unreachable(ref, exc.reason, now))
        return out

    def wait_change(self, timeout: float) -> bool:
        if self._first:
            self._first = False
            return True
        try:
            listener = self._listen()
            for _ in listener.conn.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except Exception as exc:  # the database went away: show it, then listen again
            log.warning("site view: not listening for changes: %s", getattr(exc, "reason", exc))
            self._drop_listener()
            self._closed.wait(min(self.RETRY_S, timeout))
            return True

    def _listen(self) -> PgDb:
        if self._listener is not None and self._listener.broken:
            self._drop_listener()
        if self._listener is None:
            listener = self.database.connect()
            listener.execute(f"LISTEN {SITE_CHANNEL}")
            self._listener = listener
        return self._listener

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def close(self) -> None:
        self._closed.set()
        self._drop_listener()
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
