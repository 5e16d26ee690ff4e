"""The :class:`Monitor` itself: its state (ring buffers per chair, the alarm engine, the
store), its lifecycle (restore from the store, durability callbacks), readings in, alarm
actions, and the single path every alarm change takes (:meth:`Monitor._alarm`).
Session actions are in :mod:`monitor.core.session_actions`, the queries in
:mod:`monitor.core.queries`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from monitor.alarm_engine import (
    Acknowledge,
    AlarmEngine,
    Arm,
    ClockSkew,
    Command,
    Notice,
    Observe,
    PauseAudio,
    Restore,
    SetConnection,
    Tick,
)
from monitor.clock import Clock, SystemClock
from monitor.config import BayConfig
from monitor.core.queries import ChairQueries
from monitor.core.results import (
    ChairState,
    MonitorError,
    NotFound,
)
from monitor.core.session_actions import SessionActions
from monitor.parameters import PARAMETERS
from monitor.readings import CLOCK_SKEW, Reading, RejectReason, check_value, describe, normalise
from monitor.records import (
    RECEIPTS_KEPT_S,
    Alarm,
    AlarmEvent,
    AlarmState,
    MessageReceipt,
    OperatorAction,
    Session,
    SessionEvent,
)
from monitor.rejections import RejectionCounter
from monitor.ring_buffer import RingBuffer
from monitor.seam import IngestResult
from monitor.store.protocol import DeviceSeqs, RecentSeries, Store

__all__ = ["Monitor"]

log = logging.getLogger("chairside.core")



class Monitor(SessionActions, ChairQueries):
    """The bay's core: see :mod:`monitor.core`. Session actions come from
    :class:`~monitor.core.session_actions.SessionActions`, queries from
    :class:`~monitor.core.queries.ChairQueries`."""

    def __init__(self, config: BayConfig, *, store: Store | None, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.store = store
        self._lock = threading.RLock()
        self._listeners: list[Callable[[list[AlarmEvent]], None]] = []
        self._change_listeners: list[Callable[[], None]] = []
        b = config.buffers
        self._span = b.continuous_hours * 3600
        continuous = round(self._span * b.continuous_rate_hz)
        self._chairs = {
            c.id: ChairState(c.id, c.title, {
                p.key: RingBuffer(continuous if p.continuous else b.intermittent_capacity)
                for p in PARAMETERS
            })
            for c in config.chairs
        }
        self._restored_last: dict[str, float] = {}  # chair -> its last reading in the store at start
        self._followed: int | None = None  # the id of the newest stored reading in the buffers
        self._ranges = {p.key: p.plausible for p in PARAMETERS}
        self.engine = AlarmEngine({c: config.chair_rules(c) for c in self._chairs},
                                  config.alarms.settings(config.display.stale_after_s))
        self.rejections = RejectionCounter(log)
        self.clock_skews = RejectionCounter(log, what="batch stamped ahead of the monitor's clock")
        self.accepted = 0
        self._presets = config.presets()
        self.source_problems: dict[str, str] = {}  # source -> what is wrong with its link
        self.missing_readings = 0  # messages lost in gaps of devices' sequences, reported
        self._ended: OrderedDict[str, Session] = OrderedDict()
        self._durable_lock = threading.Lock()
        self._durable_waiters: list[tuple[int, int, Callable[[], None]]] = []
        self._durable_seq = itertools.count()
        if store is not None:
            store.add_commit_listener(self._run_durable)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Rebuild buffers (:meth:`follow`: what they lack), sessions and open alarms from
        the store, then start writing."""
        if self.store is None:
            return
        n = self.follow()
        now = self.clock.now()
        for session in self.store.open_sessions():
            c = self._chairs.get(session.chair)
            if c is None:
                log.warning("open session %s is on chair %s, which is no longer configured",
                            session.id, session.chair)
                continue
            c.session = session
            self._apply_session_rules(session, now, user=None)
            self.engine.apply(Arm(session.chair, now, session.nibp_interval_s, session.baseline,
                                  self._nibp_expected(session)))
            self.engine.apply(self._schedule(session, now))
        alarms = self.store.open_alarms()
        self.engine.apply(Restore(alarms, self.store.max_alarm_id() + 1))
        self.store.start()
        log.info("store %s: %d more readings, %d open sessions, %d open alarms restored",
                 getattr(self.store, "path", "the store"), n,
                 sum(c.session is not None for c in self._chairs.values()),
                 len(alarms))

    def follow(self) -> int:
        """Take into the ring buffers what the store holds and they do not: the first time,
        the last ``continuous_hours`` of readings; after that, the readings committed since
        the last call. A standby calls it every second or so to stay warm (issue 16), so
        that taking over restores only the last moments; :meth:`start` calls it too. Only
        while nothing else writes into the buffers (before :meth:`start`). Returns how many
        readings were taken."""
        if self.store is None:
            return 0
        since = self.clock.now() - self._span
        if self._followed is None:
            top = self.store.readings_high_water()
            n = self._take_series(self.store.recent_readings(since, through_id=top))
        else:
            top, n = self._followed, 0
            while True:  # in bounded reads, until caught up
                after, (top, series) = top, self.store.readings_after(top, since)
                if top == after:
                    break
                n += self._take_series(series)
        self._followed = top
        return n

    def _take_series(self, series: Iterable[RecentSeries]) -> int:
        n = 0
        for chair, param, times, values, flags in series:
            c = self._chairs.get(chair)
            if c is None or param not in c.buffers or not len(times):
                continue
            with self._lock:
                buffer = c.buffers[param]
                if buffer.latest_time is None or times[0] >= buffer.latest_time:
                    buffer.extend(times, values, flags)
                else:  # a late reading among them: each to its place
                    for t, v, f in zip(times.tolist(), values.tolist(), flags.tolist(), strict=True):
                        buffer.append(t, None if v != v else v, f)
                self._restored_last[chair] = max(self._restored_last.get(chair, 0.0), float(times[-1]))
            n += len(times)
        return n

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def on_durable(self, ticket: int | None, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once everything up to store ticket ``ticket`` is committed
        (at once without a store or ticket). It runs on the store's writer thread: keep it
        short, and never wait on the store inside it."""
        if self.store is None or ticket is None or self.store.committed_ticket >= ticket:
            callback()
            return
        with self._durable_lock:
            heapq.heappush(self._durable_waiters, (ticket, next(self._durable_seq), callback))
        self._run_durable(self.store.committed_ticket)  # it may have committed meanwhile

    def _run_durable(self, committed: int) -> None:
        due = []
        with self._durable_lock:
            while self._durable_waiters and self._durable_waiters[0][0] <= committed:
                due.append(heapq.heappop(self._durable_waiters)[2])
        for callback in due:
            try:
                callback()
            except Exception:
                log.exception("durability callback %r failed", callback)

    def device_seqs(self) -> dict[str, DeviceSeqs]:
        """Where each device's sequence stood in the store (``Store.device_seqs``): the
        sources' de-duplication and gap memory across restarts."""
        if self.store is None:
            return {}
        self.store.flush(timeout=5)
        return self.store.device_seqs()

    def flush(self, timeout: float) -> bool:
        """Commit everything submitted so far, now: True once it is on disk within
        ``timeout`` (at once without a store)."""
        return self.store is None or self.store.flush(timeout)

    def message_receipts(self, source: str) -> list[str]:
        """The keys of the messages ``source`` took in the last ``RECEIPTS_KEPT_S`` (oldest
        first), once what is queued is committed: a (re)started source's memory of what the
        bay took, whichever server took it."""
        if self.store is None:
            return []
        self.store.flush(timeout=5)
        return self.store.message_receipts(source, self.clock.now() - RECEIPTS_KEPT_S)

    def subscribe(self, listener: Callable[[list[AlarmEvent]], None]) -> None:
        """``listener(events)`` is called (under the core's lock) after each alarm change."""
        self._listeners.append(listener)

    def on_change(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called (under the core's lock: keep it short, e.g. set an
        Event) after readings were taken or alarm or session state changed."""
        self._change_listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._change_listeners:
            try:
                listener()
            except Exception:
                log.exception("change listener %r failed", listener)

    # --- readings ----------------------------------------------------------------------

    def ingest(self, readings: Iterable[Reading], receipt: tuple[str, str] | None = None) -> IngestResult:
        """The one way in for readings. Never raises for bad input: it is refused, counted
        and logged, and the rest of the batch is taken. ``receipt`` (source, key): the
        message they came in, stored with them when any is accepted (:meth:`message_receipts`)."""
        accepted: list[Reading] = []
        rejected: list[tuple[int, RejectReason]] = []
        with self._lock:
            now = self.clock.now()
            oldest = now - self._span
            newest = now + self.config.ingest.max_future_skew_s
            skewed_after = now + self.config.ingest.clock_skew_s
            skewed: dict[tuple[str, str], float] = {}  # (chair, device) -> seconds ahead
            chairs, ranges = self._chairs, self._ranges
            for i, r in enumerate(readings):
                reason = None
                if (
                    type(r.device_time) is not float or type(r.receive_time) is not float
                    or (type(r.value) is not float and r.value is not None)
                    or (type(r.seq) is not int and r.seq is not None) or type(r.flags) is not int
                    or type(r.device) is not str or type(r.chair) is not str
                ):
                    r, reason = normalise(r)
                    if reason is not None:
                        rejected.append((i, reason))
                        self.rejections(reason.value, describe(r))
                        continue
                chair = chairs.get(r.chair)
                rng = ranges.get(r.parameter)
                value, t = r.value, r.device_time
                if chair is None:
                    reason = RejectReason.UNKNOWN_CHAIR
                elif rng is None:
                    reason = RejectReason.UNKNOWN_PARAMETER
                else:
                    if value is not None and not rng[0] <= value <= rng[1]:
                        reason = check_value(value) or RejectReason.IMPLAUSIBLE
                    elif t - t != 0:  # NaN or infinite
                        reason = RejectReason.BAD_TIME
                    if reason is None:
                        if t > newest:
                            reason = RejectReason.FUTURE_TIME
                        elif t > skewed_after:  # kept with its time, shown at its arrival
                            r = r._replace(flags=r.flags | CLOCK_SKEW)
                            skewed[(r.chair, r.device)] = max(skewed.get((r.chair, r.device), 0), t - now)
                            chair.buffers[r.parameter].append(now, value, r.flags)
                        elif t < oldest or not chair.buffers[r.parameter].append(t, value, r.flags):
                            reason = RejectReason.TOO_OLD
                if reason is not None:
                    rejected.append((i, reason))
                    self.rejections(reason.value, describe(r))
                    continue
                chair.last_receive = r.receive_time
                if value is not None:
                    chair.received[r.parameter] = now
                accepted.append(r)
            self.accepted += len(accepted)
            ticket = None
            if accepted:  # the readings, the alarm events they cause, the receipt: one transaction
                also = () if receipt is None else (MessageReceipt(now, *receipt),)
                ticket = self._alarm_with(Observe(accepted, now), accepted, also)[1]
            for (name, device), ahead in skewed.items():
                self.clock_skews("clock_skew", f"chair={name!r} device={device!r} {ahead:.0f} s ahead")
                self._alarm(ClockSkew(name, device, ahead, now))
        return IngestResult(len(accepted), tuple(rejected), ticket)

    def report_connection(self, chair: str, source: str, online: bool, detail: str = "") -> None:
        """An adapter's word that a device went away or came back."""
        with self._lock:
            c = self._chair(chair)
            now = self.clock.now()
            if online:
                c.offline_sources.pop(source, None)
            else:
                c.offline_sources.setdefault(source, now)
            log.info("chair %s: source %s %s%s", chair, source, "online" if online else "offline",
                     f" ({detail})" if detail else "")
            self._alarm(SetConnection(chair, source, online, now, detail,
                                      self.config.source_parameters(source),
                                      self.config.source_kind(source)))

    def report_interruption(self, reason: str) -> list[str]:
        """After this server took over the bay (or started on it): each chair in a session
        gets a technical alarm naming the gap since its last stored reading (or, with none,
        its session's last change), "Monitoring interrupted N s (reason)" (N at least 1: a
        takeover always interrupts), standing until acknowledged. Returns the chairs alarmed."""
        with self._lock:
            now = self.clock.now()
            alarmed = []
            for chair, c in self._chairs.items():
                if c.session is None:
                    continue
                last = self._restored_last.get(chair, c.session.updated_at or c.session.started_at)
                gap = max(1, round(now - last))
                log.error("chair %s: monitoring interrupted %d s (%s)", chair, gap, reason)
                self._alarm(Notice(chair, "interrupted", "MONITORING_INTERRUPTED",
                                   "Monitoring interrupted {count} s (" + reason + ")", gap, now))
                alarmed.append(chair)
            return alarmed

    def report_gap(self, chair: str, device: str, missing: int, after_seq: int, seq: int) -> None:
        """A source saw ``missing`` messages of a device's sequence never arrive (accepted by
        the broker, lost before delivery): a technical alarm on the chair naming how many,
        standing until acknowledged (more of the same device's add to it)."""
        with self._lock:
            self._chair(chair)
            self.missing_readings += missing
            log.error("chair %s: %d message(s) from device %s never arrived (seq %d to %d)",
                      chair, missing, device, after_seq + 1, seq - 1)
            self._alarm(Notice(chair, f"gap_{device}", "DATA_GAP",
                               "{count} readings lost in transmission",
                               missing, self.clock.now()))

    def report_source(self, source: str, ok: bool, detail: str,
                      chairs: Sequence[str] | None = None, kind: str = "") -> None:
        """A source's own link failed (e.g. its broker session was taken over) or is back:
        a technical alarm on each of ``chairs`` (None: every chair) while it lasts."""
        with self._lock:
            now = self.clock.now()
            if ok:
                self.source_problems.pop(source, None)
            else:
                self.source_problems[source] = detail
            log.log(logging.INFO if ok else logging.ERROR, "source %s: %s", source, detail)
            for chair in chairs or list(self._chairs):
                if chair in self._chairs:
                    self._alarm(SetConnection(chair, f"link:{source}", ok, now, detail,
                                              transport=kind or self.config.source_kind(source)))

    # --- time --------------------------------------------------------------------------

    def tick(self) -> None:
        with self._lock:
            self._alarm(Tick(self.clock.now()))


    # --- operator actions --------------------------------------------------------------

    def acknowledge(self, alarm_id: int, user: str) -> Alarm:
        with self._lock:
            alarm = self.engine.get(alarm_id)
            if alarm is None:
                stored = self.store.get_alarm(alarm_id) if self.store else None
                if stored is None:
                    raise NotFound(f"no alarm with id {alarm_id}")
                raise MonitorError(f"alarm {alarm_id} is {stored.state.value}: nothing to acknowledge")
            now = self.clock.now()
            events = self._alarm(Acknowledge(alarm_id, user, now))
            self._audit(OperatorAction(now, user, "acknowledge", alarm.chair, str(alarm_id),
                                       {"code": alarm.code, "message": alarm.message}))
            return events[-1].alarm if events else alarm

    def acknowledge_chair(self, chair: str, user: str) -> list[Alarm]:
        """Acknowledge every alarm of ``chair`` not yet acknowledged (one click at the bay
        screen); each is audited on its own. Returns the alarms after the action."""
        with self._lock:
            self._chair(chair)
            done = []
            for alarm in self.engine.open_alarms(chair):
                if alarm.state is AlarmState.ACKNOWLEDGED:
                    continue
                now = self.clock.now()
                events = self._alarm(Acknowledge(alarm.id, user, now))
                self._audit(OperatorAction(now, user, "acknowledge", chair, str(alarm.id),
                                           {"code": alarm.code, "message": alarm.message,
                                            "chair_acknowledge": True}))
                done.append(events[-1].alarm if events else alarm)
            return done

    def pause_audio(self, chair: str, user: str, duration_s: float | None = None) -> list[Alarm]:
        with self._lock:
            self._chair(chair)
            now = self.clock.now()
            events = self._alarm(PauseAudio(chair, user, now, duration_s))
            until = self.engine.paused_until(chair)
            self._audit(OperatorAction(now, user, "pause_audio", chair, None,
                                       {"until": until, "alarms": [e.alarm_id for e in events]}))
            return [e.alarm for e in events]


    def audit(self, user: str, action: str, chair: str | None = None, target: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
        """Record an action that changes no bay state (login, logout, a failed login, a user
        change, an export) in the operator-action audit chain."""
        self._audit(OperatorAction(self.clock.now(), user, action, chair, target, dict(detail or {})))


    # --- internals ---------------------------------------------------------------------

    def _alarm(self, cmd: Command) -> list[AlarmEvent]:
        """The single place alarm state changes: decide, record, tell."""
        return self._alarm_with(cmd, ())[0]

    def _alarm_with(self, cmd: Command, readings: Sequence[Reading], also: Sequence[MessageReceipt] = ()
                    ) -> tuple[list[AlarmEvent], int | None]:
        """``_alarm`` for a command caused by ``readings``: they and the alarm events are
        stored together (one store ticket, returned), so no alarm event is ever on disk
        without the readings that raised it."""
        events = self.engine.apply(cmd)
        for e in events:
            log.log(logging.WARNING if e.old_state is None else logging.INFO,
                    "alarm %d chair %s %s: %s -> %s (%s)%s", e.alarm_id, e.chair,
                    e.alarm.message, e.old_state.value if e.old_state else "-",
                    e.new_state.value, e.note, f" by {e.user}" if e.user else "")
        ticket = None
        if self.store is not None and (events or readings):
            ticket = self.store.add(readings, [*events, *also])
        if events:
            for listener in self._listeners:
                try:
                    listener(events)
                except Exception:
                    log.exception("alarm listener %r failed", listener)
        if events or readings:
            self._changed()
        return events, ticket

    def _audit(self, action: OperatorAction) -> None:
        log.info("action %s by %s on %s %s", action.action, action.user, action.chair or "-",
                 action.target or "")
        if self.store is not None:
            self.store.add_records([action])

    def _record(self, session: Session, event: SessionEvent, action: OperatorAction | None) -> None:
        log.info("session %s chair %s: %s %s", session.id, session.chair, event.kind.value,
                 event.detail)
        if self.store is not None:
            self.store.add_records([session, event] + ([action] if action else []))
        self._changed()
