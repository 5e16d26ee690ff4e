"""The core's read side (:class:`ChairQueries`, mixed into :class:`monitor.core.Monitor`): a
chair's status (vitals with their age and staleness, connection, NEWS2, open alarms,
session, pause, delayed data), a session by id (open, recently ended, or from the store),
the open alarms, a parameter's trend window, the buffers' memory; and the dashboard's door:
the rules, baseline and audio pause in force, and the stored history (alarms, alarm and
session events, sessions, the store's state) — so no page or API route reaches the engine or
the store. Each reads under the core's lock (the store has its own).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from monitor.alarm_engine import AlarmEngine
from monitor.alarm_rules import LimitRule
from monitor.clock import Clock
from monitor.config import BayConfig
from monitor.core.results import ChairState, ChairStatus, NoHistory, NotFound, VitalStatus
from monitor.news2 import news2
from monitor.parameters import PARAMETERS
from monitor.records import Alarm, AlarmEvent, Session, SessionEvent
from monitor.ring_buffer import Window, downsample
from monitor.store.protocol import Store

__all__ = ["ChairQueries"]


class ChairQueries:
    """Queries of :class:`monitor.core.Monitor` (which provides the state below)."""

    config: BayConfig
    clock: Clock
    engine: AlarmEngine
    store: Store | None
    _lock: threading.RLock
    _chairs: dict[str, ChairState]
    _ended: OrderedDict[str, Session]

    def _chair(self, chair: str) -> ChairState:
        try:
            return self._chairs[chair]
        except KeyError:
            raise NotFound(f"no chair {chair!r}") from None

    @property
    def chair_ids(self) -> list[str]:
        return list(self._chairs)

    def status(self, chair: str) -> ChairStatus:
        with self._lock:
            c = self._chair(chair)
            now = self.clock.now()
            stale_after = self.config.display.stale_after_s
            vitals = {}
            for p in PARAMETERS:
                latest = c.buffers[p.key].latest_valid()
                if latest is None:
                    vitals[p.key] = VitalStatus(p, None, None, None, True)
                    continue
                t, value = latest
                # as old as its device time says, and never younger than its arrival: a
                # device clock ahead cannot keep a value fresh
                age = max(0.0, now - t, now - c.received.get(p.key, now))
                # NIBP is as fresh as its cycle allows: it is shown with its age instead
                stale = age >= stale_after if p.continuous else age >= 3600
                vitals[p.key] = VitalStatus(p, value, t, age, stale)

            def current(key: str) -> float | None:
                v = vitals[key]
                return None if v.stale else v.value

            pulse = current("hr") if current("hr") is not None else current("pr")
            return ChairStatus(
                chair=chair, label=c.label, connection=self._connection(c, now),
                last_reading_at=c.last_receive, vitals=vitals,
                news2=news2(current("spo2"), current("nibp_sys"), pulse),
                alarms=self.engine.open_alarms(chair), session=c.session,
                paused_until=self.engine.paused_until(chair),
                delayed=self.engine.delayed(chair),
            )

    def session(self, session_id: str) -> Session:
        for c in self._chairs.values():
            if c.session is not None and c.session.id == session_id:
                return c.session
        if session_id in self._ended:
            return self._ended[session_id]
        found = self.store.get_session(session_id) if self.store else None
        if found is None:
            raise NotFound(f"no session with id {session_id!r}")
        return found

    def open_alarms(self) -> list[Alarm]:
        with self._lock:
            return self.engine.open_alarms()

    def trend(self, chair: str, parameter: str, seconds: float, max_points: int = 300) -> Window:
        with self._lock:
            c = self._chair(chair)
            if parameter not in c.buffers:
                raise NotFound(f"no parameter {parameter!r}")
            return downsample(c.buffers[parameter].last(seconds, self.clock.now()), max_points)

    # --- the dashboard's door: rules, baseline, pause, and the stored history --------------

    def rules(self, chair: str) -> tuple[LimitRule, ...]:
        """The chair's limit rules in force (the session's, or the profile's)."""
        with self._lock:
            self._chair(chair)
            return self.engine.rules(chair)

    def baseline(self, chair: str) -> dict[str, float]:
        with self._lock:
            self._chair(chair)
            return dict(self.engine.baseline(chair))

    def paused_until(self, chair: str) -> float | None:
        """When the chair's audio pause ends (None: not paused)."""
        with self._lock:
            self._chair(chair)
            return self.engine.paused_until(chair)

    def history(self) -> Store:
        """The stored record, up to date with everything taken so far (for the alarm and
        session history and the exports, which read it). MonitorError when the bay keeps no
        store, or its writer cannot commit now."""
        store = self.store
        if store is None:
            raise NoHistory("this bay keeps no store")
        if not store.flush(timeout=5):
            raise NoHistory("the store is not committing (see /healthz); try again")
        return store

    def alarm_history(self, limit: int) -> list[Alarm]:
        """The newest ``limit`` alarms as they stand now, cleared ones too (the open ones
        without a store)."""
        return self.history().alarms(limit) if self.store is not None else self.open_alarms()

    def alarm_events(self, *, chair: str | None = None, since: float | None = None,
                     limit: int | None = None) -> list[AlarmEvent]:
        """Stored alarm events, oldest first (none without a store)."""
        if self.store is None:
            return []
        return list(self.history().alarm_events(chair=chair, since=since, limit=limit))

    def session_events(self, session_id: str) -> list[SessionEvent]:
        return list(self.history().session_events(session_id)) if self.store is not None else []

    def sessions(self, chair: str, limit: int) -> list[Session]:
        """The chair's newest sessions from the store, newest first."""
        return list(self.store.sessions(chair, limit=limit)) if self.store is not None else []

    def store_stats(self) -> dict[str, Any] | None:
        """The store's writer: pending rows, failures, commit times (None: no store)."""
        return self.store.stats() if self.store is not None else None

    def memory_bytes(self) -> int:
        return sum(b.nbytes for c in self._chairs.values() for b in c.buffers.values())

    def _connection(self, c: ChairState, now: float) -> str:
        d = self.config.display
        last = c.last_receive
        reported = max(c.offline_sources.values(), default=None)
        if last is None or now - last >= d.offline_after_s or (reported is not None and last <= reported):
            return "offline"
        return "stale" if now - last >= d.stale_after_s else "online"
