"""``chairside run`` with ``[ha] enabled``: one of the bay's two servers leads, the other
waits (issue 16; docs/high-availability.md).

Both run this. Leadership is PostgreSQL's (:class:`monitor.store.leadership.Leadership`: a
session advisory lock). While this server waits it serves only the standby answers
(:mod:`dashboard.standby`: ``/healthz`` 503 ``"role": "standby"``) and keeps warm: its
store is open and its ring buffers follow what the leader commits (``Monitor.follow``, every
``FOLLOW_S``), so that a takeover reads only the last moments, not hours of readings. When it
becomes the leader it does what a restart after a crash does on those buffers: restores open
sessions, alarms with their acknowledge/pause/latch state and baselines from the database
(``Monitor.start``), starts every source, and serves the bay screen and the API on the same
port; the takeover is recorded in the audit trail. When it stops leading (its database
connection lost) it stops its sources first, then the rest, and waits again. A clean stop
hands leadership over at once.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import time

from dashboard.server import WebServer
from monitor.bay_store import bay_database
from monitor.config import BayConfig
from monitor.errors import ChairsideError
from monitor.records import OperatorAction
from monitor.store.db import PgDatabase
from monitor.store.leadership import Leadership
from station.lifecycle import StopSignals
from station.service import BayService

__all__ = ["StandbyPair"]

log = logging.getLogger("chairside.ha")


class StandbyPair:
    """This server's half of a bay's leader/standby pair."""

    FOLLOW_S = 1.0  # how often the standby's buffers take in the leader's commits

    def __init__(self, config: BayConfig, host: str, port: int, stop: StopSignals) -> None:
        self.config, self.host, self.port, self.stop = config, host, port, stop
        database = bay_database(config.store, config.bay.id)
        assert isinstance(database, PgDatabase)  # the config insists on it
        self._changes: queue.Queue[bool] = queue.Queue()
        self.leadership = Leadership(database, self._changes.put, check_s=config.ha.check_s)
        self.service: BayService | None = None  # while this server leads
        self.warm: BayService | None = None  # while it waits: store open, buffers following
        self._followed_at: float | None = None
        self._warm_problem = ""
        self.web: WebServer | None = None
        self.server = f"{socket.gethostname()}:{os.getpid()}"

    def run(self) -> None:
        """Until a stop is requested: wait, lead, wait again as leadership comes and goes."""
        self._serve_standby()
        self.leadership.start()
        try:
            while not self.stop.wait(0.1):
                try:
                    leads = self._changes.get_nowait()
                except queue.Empty:
                    if self.service is None:
                        self._keep_warm()
                    continue
                if leads and self.service is None:
                    self._lead()
                elif not leads and self.service is not None:
                    self._step_down()
        finally:
            self._stop_web()
            self._cool()
            if self.service is not None:
                self._audit("leadership_released")
                self.service.stop()
                self.service = None
            self.leadership.stop()  # last: the standby leads once this one wrote all it had

    def _serve_standby(self) -> None:
        from dashboard.standby import create_standby_app

        app = create_standby_app(self.config.bay.id, self.config.bay.name)
        self._start_web(app)
        log.info("bay %s: standby on %s; the other server leads", self.config.bay.id, self.web.url
                 if self.web else "")

    def _lead(self) -> None:
        from dashboard.app import create_app
        from dashboard.live import LiveBay

        started = time.monotonic()
        self._stop_web()
        service, self.warm = self.warm, None
        if service is None:  # not warm yet: opens the store and reads it all, as after a crash
            service = BayService(self.config)
        try:
            # the next leader epoch, after any batch of the previous leader's: from now on a
            # server that stepped down cannot write (its pending writes are refused, their
            # senders give them to this one), and what this one reads below is all it wrote
            epoch = service.monitor.store.fence(self.server) if service.monitor.store is not None else 0
            log.info("bay %s: leader epoch %d", self.config.bay.id, epoch)
            service.start(self.stop.check)
        except BaseException:
            service.stop()
            raise
        self.service = service
        self._audit("leadership_taken")
        service.monitor.report_interruption("server takeover")
        app = create_app(LiveBay(service.monitor, service.sources, site=service.site))
        self._start_web(app.server)
        log.warning("bay %s: this server leads (%s), serving on %s; taken over in %.1f s",
                    self.config.bay.id, self.server, self.web.url if self.web else "",
                    time.monotonic() - started)

    def _step_down(self) -> None:
        log.error("bay %s: leadership lost: stopping the sources and the bay screen here",
                  self.config.bay.id)
        self._stop_web()
        service, self.service = self.service, None
        if service is not None:
            service.stop()
        self._followed_at = None  # warm again at once
        self._serve_standby()

    def _keep_warm(self) -> None:
        """The standby's store opened (once) and its buffers brought up to the leader's last
        commit (every ``FOLLOW_S``). A failure (the database out of reach) is logged when it
        changes; the store is opened afresh at the next try."""
        if self._followed_at is not None and time.monotonic() - self._followed_at < self.FOLLOW_S:
            return
        self._followed_at = time.monotonic()
        try:
            if self.warm is None:
                self.warm = BayService(self.config)
            self.warm.monitor.follow()
        except ChairsideError as exc:
            self._cool()
            if str(exc) != self._warm_problem:
                log.error("bay %s: the standby cannot follow the store: %s", self.config.bay.id, exc)
            self._warm_problem = str(exc)
            return
        if self._warm_problem:
            log.info("bay %s: the standby follows the store again", self.config.bay.id)
            self._warm_problem = ""

    def _cool(self) -> None:
        warm, self.warm = self.warm, None
        if warm is not None:
            warm.stop()

    def _audit(self, action: str) -> None:
        if self.service is not None and self.service.monitor.store is not None:
            self.service.monitor.store.add_records([OperatorAction(
                time.time(), "chairside", action, None, self.config.bay.id, {"server": self.server})])

    def _start_web(self, wsgi: object) -> None:
        self.web = WebServer(wsgi, self.host, self.port, auth_enabled=self.config.auth.enabled)
        self.web.start()

    def _stop_web(self) -> None:
        web, self.web = self.web, None
        if web is not None:
            web.stop()
