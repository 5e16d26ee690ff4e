"""The site view's data: every bay of a unit at a glance, for the charge nurse (issue 15).

Many bays share one database (one schema per bay); the site view reads each bay's open
alarms and open sessions and reduces them to a :class:`BaySummary` per bay with
:func:`summarize` (pure: records and a time in, a summary out). A :class:`SiteSource` gives
the web the summaries and says when they changed (:meth:`SiteSource.wait_change`), so the
site screen is pushed a change instead of asking every second.

:class:`StoresSiteSource` is the source for bays whose stores this process can open
(SQLite files, or each bay's schema through a ``BayReader``): it reads them through
:class:`BayRecords` (three methods of the ``Store`` Protocol) and notices changes by
polling them cheaply every ``poll_s`` seconds. A PostgreSQL source replaces the polling with ``LISTEN
chairside_site`` (:mod:`monitor.store.postgres` sends ``NOTIFY chairside_site, '<bay>'`` with
every commit that carries alarm events or session changes), so it wakes at once and costs
nothing while the unit is quiet; it implements the same two methods.

The site view is read-only: nothing here writes, and the screen offers no actions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monitor.clock import Clock, SystemClock
from monitor.records import Alarm, AlarmKind, AlarmState, Priority, Session

__all__ = ["BayRecords", "BayRef", "BaySummary", "OldestAlarm", "SiteSource", "StoresSiteSource",
           "TechnicalProblem", "summarize", "unreachable"]

log = logging.getLogger("chairside.site")

#: Open but nobody has acknowledged it yet (a paused alarm still waits for a nurse).
_UNACKNOWLEDGED = frozenset({AlarmState.ACTIVE, AlarmState.PAUSED, AlarmState.LATCHED})


@dataclass(frozen=True, slots=True)
class BayRef:
    """A bay as the site knows it: its id (the schema's), its name and its own screen."""

    id: str
    name: str
    url: str  # the bay's own screen, e.g. "https://bay2.ward.example/"

    def __post_init__(self) -> None:
        if not self.id or "|" in self.id or self.id != self.id.strip():
            raise ValueError(f"site: a bay id must be non-empty, without '|' or outer spaces: {self.id!r}")


@dataclass(frozen=True, slots=True)
class TechnicalProblem:
    """An open technical alarm (sensor off, no data, a device gone): not the patient's state
    but something a nurse must fix."""

    chair: str
    message: str
    priority: Priority
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class OldestAlarm:
    """The alarm that has waited longest for a nurse (clinical or technical)."""

    chair: str
    message: str
    priority: Priority
    since: float  # when it was raised (UNIX seconds)


def _zero() -> dict[Priority, int]:
    return dict.fromkeys(Priority, 0)


@dataclass(frozen=True, slots=True)
class BaySummary:
    """One bay as the site view shows it, as of ``as_of``. An unreachable bay (its data
    could not be read) has ``reachable`` False, the reason in ``error`` and nothing else."""

    ref: BayRef
    as_of: float
    reachable: bool = True
    error: str = ""
    chairs_in_use: int = 0  # chairs with an open session
    clinical: Mapping[Priority, int] = field(default_factory=_zero)  # open clinical alarms
    clinical_unacknowledged: Mapping[Priority, int] = field(default_factory=_zero)
    technical: tuple[TechnicalProblem, ...] = ()  # most urgent first
    oldest_unacknowledged: OldestAlarm | None = None

    @property
    def open_alarms(self) -> int:
        return sum(self.clinical.values()) + len(self.technical)


def summarize(ref: BayRef, open_alarms: Iterable[Alarm], open_sessions: Iterable[Session],
              now: float) -> BaySummary:
    """The bay's summary from its open alarms and sessions (closed ones passed in are left
    out: the store's answer may be a moment old, the filter costs nothing)."""
    alarms = [a for a in open_alarms if a.state.is_open]
    clinical, unacked = _zero(), _zero()
    technical = []
    for a in alarms:
        if a.kind is AlarmKind.TECHNICAL:
            technical.append(a)
        else:
            clinical[a.priority] += 1
            if a.state in _UNACKNOWLEDGED:
                unacked[a.priority] += 1
    technical.sort(key=lambda a: (-a.priority, a.raised_at, a.id))
    waiting = [a for a in alarms if a.state in _UNACKNOWLEDGED]
    oldest = min(waiting, key=lambda a: (a.raised_at, -a.priority, a.id), default=None)
    chairs = {s.chair for s in open_sessions if s.state.is_open}
    return BaySummary(
        ref=ref, as_of=now, chairs_in_use=len(chairs), clinical=clinical, clinical_unacknowledged=unacked,
        technical=tuple(TechnicalProblem(a.chair, a.message, a.priority, a.state not in _UNACKNOWLEDGED)
                        for a in technical),
        oldest_unacknowledged=None if oldest is None else
        OldestAlarm(oldest.chair, oldest.message, oldest.priority, oldest.raised_at),
    )


def unreachable(ref: BayRef, error: str, now: float) -> BaySummary:
    """A bay whose data could not be read: shown as such, never left out."""
    return BaySummary(ref=ref, as_of=now, reachable=False, error=error or "no answer")


class BayRecords(Protocol):
    """What the site reads of a bay: a full store (``monitor.store.Store``) or a read-only
    one on another bay's data (``monitor.store.postgres.BayReader``)."""

    def open_alarms(self) -> list[Alarm]: ...
    def open_sessions(self) -> list[Session]: ...
    def max_alarm_id(self) -> int: ...


class SiteSource(Protocol):
    """Where the site view gets its bays from."""

    def summaries(self) -> list[BaySummary]:
        """Every bay, in the site's order; a bay that cannot be read is in it, unreachable."""
        ...

    def wait_change(self, timeout: float) -> bool:
        """Block until something the summaries show may have changed since the previous call
        (True; the first call answers True at once) or ``timeout`` seconds passed (False).
        One thread waits (the site feed's)."""
        ...


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class StoresSiteSource:
    """The site from stores this process holds, one per bay, read through
    :class:`BayRecords`. Changes are noticed by polling every ``poll_s`` s: per bay the
    highest alarm id (a new alarm) and the open alarms' and sessions' states (an acknowledgement, a
    cleared alarm, a session started or ended) — a few indexed queries. The PostgreSQL source
    replaces this polling with LISTEN/NOTIFY. The stores stay the caller's to close."""

    def __init__(self, bays: Sequence[tuple[BayRef, BayRecords]], poll_s: float = 1.0,
                 clock: Clock | None = None) -> None:
        ids = [ref.id for ref, _ in bays]
        if len(set(ids)) != len(ids):
            raise ValueError(f"site: bay ids must be unique, got {ids}")
        if poll_s <= 0:
            raise ValueError(f"site: poll_s must be positive, not {poll_s}")
        self.bays = tuple(bays)
        self.poll_s = poll_s
        self.clock = clock or SystemClock()
        self._seen: tuple[object, ...] | None = None
        self._closed = threading.Event()

    def summaries(self) -> list[BaySummary]:
        now = self.clock.now()
        out = []
        for ref, store in self.bays:
            try:
                out.append(summarize(ref, store.open_alarms(), store.open_sessions(), now))
            except Exception as exc:  # one bay's failure must not hide the others
                log.warning("site: bay %s cannot be read: %s", ref.id, _reason(exc))
                out.append(unreachable(ref, _reason(exc), now))
        return out

    def wait_change(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            state = self._state()
            if state != self._seen:
                self._seen = state
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self._closed.wait(min(self.poll_s, left)):
                return False

    def close(self) -> None:
        """End a wait at once (the server stops); the stores are not closed."""
        self._closed.set()

    def _state(self) -> tuple[object, ...]:
        """What the summaries depend on, per bay, cheaply compared."""
        return tuple(self._bay_state(store) for _, store in self.bays)

    @staticmethod
    def _bay_state(store: BayRecords) -> object:
        try:
            return (store.max_alarm_id(),
                    frozenset((a.id, a.state, a.priority, a.updated_at) for a in store.open_alarms()),
                    frozenset((s.id, s.state) for s in store.open_sessions()))
        except Exception as exc:  # unreachable is a state too: its change is a change
            return ("unreachable", _reason(exc))
