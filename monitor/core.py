"""The monitoring core: one object per bay that every reading and every action goes through.

Ways in (each thread-safe, each the only way to make its kind of change)::

    ingest(readings)                  every reading from every adapter and simulator
    report_connection(chair, source, online)
    tick()                            time passing (a ticker thread calls it about 1/s)
    acknowledge / acknowledge_chair / pause_audio   operator actions on alarms (audited)
    start_session / session_step / set_baseline / confirm_baseline / set_limits / end_session
    enter_manual_nibp                 a nurse's NIBP reading, taken in like a device's (audited)

Inside, every alarm change goes through ``_alarm``: the engine decides, the store records,
the listeners (the dashboard) hear of it. Readings go to the ring buffers for display and
to the store's writer for durability; ``IngestResult.ticket`` says when they are on disk.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.alarm_engine import (
    PROMPTS,
    Acknowledge,
    AlarmEngine,
    Arm,
    ClockSkew,
    Command,
    Disarm,
    Notice,
    Observe,
    PauseAudio,
    Restore,
    SetBaseline,
    SetConnection,
    SetRules,
    SetSchedule,
    Tick,
)
from monitor.alarm_rules import LimitRule, RuleError, check_rule_set, compare_rules, rules_from_dicts
from monitor.clock import Clock, SystemClock
from monitor.config import BayConfig, merge_rules
from monitor.errors import CoreError
from monitor.news2 import News2, news2
from monitor.parameters import PARAMETERS, Parameter
from monitor.readings import CLOCK_SKEW, Reading, RejectReason, check_value, describe, manual_nibp, normalise
from monitor.records import (
    Alarm,
    AlarmEvent,
    AlarmState,
    OperatorAction,
    Session,
    SessionEvent,
    SessionEventKind,
    SessionState,
)
from monitor.rejections import RejectionCounter
from monitor.ring_buffer import RingBuffer, Window, downsample
from monitor.sessions import SessionError, new_session, step
from monitor.store.protocol import DeviceSeqs, Store

__all__ = [
    "BaselineProposal",
    "ChairStatus",
    "ConfirmationNeeded",
    "ConfirmationRequired",
    "IngestResult",
    "InvalidLimits",
    "Monitor",
    "MonitorError",
    "VitalStatus",
]

log = logging.getLogger("chairside.core")
K = SessionEventKind
SYSTEM_USER = "system"
MANUAL_DEVICE = "manual"  # the device of readings a nurse enters


class MonitorError(CoreError):
    """An action the core refuses (unknown chair, session or alarm; a step not allowed)."""


class NotFound(MonitorError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConfirmationRequired(MonitorError):
    """An action that needs the operator's explicit confirmation; ``items`` are the clinical
    lines to show in the confirmation (e.g. the open alarms an end of session would close)."""

    def __init__(self, message: str, items: Sequence[str]) -> None:
        super().__init__(message)
        self.items = tuple(items)


class InvalidLimits(MonitorError, ValueError):
    """Limits a clinician would refuse. ``field`` names the field of the request
    (``rules[1].low``), ``problem`` what is wrong, ``clinical`` both in clinical words."""

    def __init__(self, field: str, problem: str, clinical: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field, self.problem, self.clinical = field, problem, clinical


class ConfirmationNeeded(ConfirmationRequired):
    """Limits that would alarm later than the chair's profile defaults: ``changes`` (the
    ``items``) lists them in clinical words (``SpO2 low limit 90 % → 88 %``)."""

    def __init__(self, changes: Sequence[str]) -> None:
        super().__init__("these changes make alarms less sensitive than the profile's defaults and "
                         "need confirmation: " + "; ".join(changes), changes)

    @property
    def changes(self) -> tuple[str, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class BaselineProposal:
    """A pre-infusion baseline for the nurse to confirm: the mean per parameter of the
    readings between ``since`` and ``until`` that were not in alarm (nor flagged)."""

    values: dict[str, float]
    since: float
    until: float
    used: dict[str, int]  # readings averaged, per parameter
    left_out: dict[str, int]  # readings left out as in alarm or flagged, per parameter


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    rejected: tuple[tuple[int, RejectReason], ...]  # (index in the batch, reason)
    ticket: int | None  # store ticket: all accepted readings are durable once it commits


@dataclass(frozen=True, slots=True)
class VitalStatus:
    parameter: Parameter
    value: float | None
    time: float | None  # device time of the value
    age_s: float | None
    stale: bool


@dataclass(frozen=True, slots=True)
class ChairStatus:
    chair: str
    label: str
    connection: str  # online, stale, offline
    last_reading_at: float | None
    vitals: dict[str, VitalStatus]
    news2: News2
    alarms: list[Alarm]
    session: Session | None
    paused_until: float | None
    # continuous parameters whose latest reading arrived late: key -> seconds behind the
    # monitor's clock (the tile shows DELAYED; the API's "delayed")
    delayed: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Chair:
    id: str
    label: str
    buffers: dict[str, RingBuffer]
    last_receive: float | None = None
    received: dict[str, float] = field(default_factory=dict)  # param -> when its latest value came
    offline_sources: dict[str, float] = field(default_factory=dict)  # source -> reported at
    session: Session | None = None


class Monitor:
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
            c.id: _Chair(c.id, c.title, {
                p.key: RingBuffer(continuous if p.continuous else b.intermittent_capacity)
                for p in PARAMETERS
            })
            for c in config.chairs
        }
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
        """Rebuild buffers, sessions and open alarms from the store, then start writing."""
        if self.store is None:
            return
        now = self.clock.now()
        n = 0
        for chair, param, times, values, flags in self.store.recent_readings(now - self._span):
            c = self._chairs.get(chair)
            if c is not None and param in c.buffers:
                c.buffers[param].extend(times, values, flags)
                n += len(times)
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
        log.info("store %s: %d readings, %d open sessions, %d open alarms restored",
                 self.config.store.path, n, sum(c.session is not None for c in self._chairs.values()),
                 len(alarms))

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

    def ingest(self, readings: Iterable[Reading]) -> IngestResult:
        """The one way in for readings. Never raises for bad input: it is refused, counted
        and logged, and the rest of the batch is taken."""
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
            if accepted:  # the readings and the alarm events they cause: one transaction
                ticket = self._alarm_with(Observe(accepted, now), accepted)[1]
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

    def baseline_proposal(self, chair: str) -> BaselineProposal | None:
        """The baseline the chair's open session would get from its pre-infusion readings:
        the last ``display.baseline_minutes`` before the infusion started (or before now,
        while it has not), continuous readings and the cuff readings since hook-up, each
        left out while it breached one of the chair's absolute limits or carried a quality
        flag. None without a session or without such readings. Nothing is set until a nurse
        confirms it (``confirm_baseline``)."""
        with self._lock:
            c = self._chair(chair)
            session = c.session
            if session is None:
                return None
            until = session.infusion_started_at or self.clock.now()
            since = max(session.started_at, until - self.config.display.baseline_minutes * 60)
            rules = self.engine.rules(chair)
            values: dict[str, float] = {}
            used: dict[str, int] = {}
            left_out: dict[str, int] = {}
            cuff_alarm: set[float] = set()  # a cuff cycle with any value in alarm goes whole
            windows = {}
            for p in PARAMETERS:
                w = c.buffers[p.key].between(since if p.continuous else session.started_at - 300, until)
                finite = np.isfinite(w.values)
                if session.infusion_started_at is not None:  # what came with the infusion is not
                    finite &= w.times < until
                bad = (w.flags != 0) | _breaching(p.key, w.values, rules)
                windows[p.key] = (w, finite, bad)
                if not p.continuous:
                    cuff_alarm.update(w.times[finite & bad].tolist())
            for p in PARAMETERS:
                w, finite, bad = windows[p.key]
                if not p.continuous and cuff_alarm:
                    bad = bad | np.isin(w.times, list(cuff_alarm))
                good = finite & ~bad
                if good.any():
                    values[p.key] = round(float(w.values[good].mean()), 1)
                    used[p.key] = int(good.sum())
                if (finite & bad).any():
                    left_out[p.key] = int((finite & bad).sum())
            if not values:
                return None
            return BaselineProposal(values, since, until, used, left_out)

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

    def start_session(self, chair: str, patient: str, user: str, protocol: str = "",
                      drug: str | None = None, dose: str | None = None) -> Session:
        with self._lock:
            c = self._chair(chair)
            if c.session is not None:
                raise MonitorError(f"chair {chair} already has session {c.session.id}")
            now = self.clock.now()
            try:
                session, event = new_session(
                    chair=chair, patient=patient, user=user, now=now, preset_key=protocol,
                    preset=self._presets.get(protocol), drug=drug, dose=dose)
            except SessionError as exc:
                raise MonitorError(str(exc)) from None
            c.session = session
            self._record(session, event, OperatorAction(now, user, "start_session", chair,
                                                        session.id, {"protocol": protocol}))
            self._apply_session_rules(session, now, user)
            self._alarm(Arm(chair, now, session.nibp_interval_s, {}, self._nibp_expected(session)))
            self._alarm(self._schedule(session, now))
            return session

    def session_step(self, session_id: str, kind: SessionEventKind, user: str,
                     detail: str = "", data: dict[str, Any] | None = None) -> Session:
        """Record an infusion event, a note, the observation start or the session's end."""
        with self._lock:
            if kind is K.LIMITS_CHANGED:  # validated and confirmed as set_limits does
                return self.set_limits(session_id, (data or {}).get("rules", []), user)
            session = self._open_session(session_id)
            now = self.clock.now()
            if kind is K.SESSION_ENDED:
                data, detail = self._check_end(session, data, detail)
            return self._session_step(session, kind, user, now, detail, data)

    def set_baseline(self, session_id: str, values: dict[str, float], user: str) -> Session:
        clean = {}
        for key, value in values.items():
            param = next((p for p in PARAMETERS if p.key == key), None)
            if param is None or check_value(value) or not param.is_plausible(float(value)):
                raise MonitorError(f"baseline {key}={value!r} is not a plausible value")
            clean[key] = float(value)
        return self.session_step(session_id, K.BASELINE_SET, user,
                                 "baseline entered: " + _baseline_text(clean),
                                 {"baseline": clean, "source": "entered"})

    def confirm_baseline(self, session_id: str, user: str) -> Session:
        """Take the chair's current :meth:`baseline_proposal` as the session's baseline (an
        audited action; the only way a proposed baseline becomes one)."""
        with self._lock:
            session = self._open_session(session_id)
            proposal = self.baseline_proposal(session.chair)
            if proposal is None:
                raise MonitorError("no baseline to confirm: no readings out of alarm before the "
                                   "infusion yet (or enter the baseline)")
            return self.session_step(
                session_id, K.BASELINE_SET, user,
                "baseline confirmed: " + _baseline_text(proposal.values),
                {"baseline": proposal.values, "source": "confirmed",
                 "window": [proposal.since, proposal.until], "readings": proposal.used,
                 "left_out_in_alarm": proposal.left_out})

    def enter_manual_nibp(self, session_id: str, sys: float, dia: float, mean: float | None,
                          user: str) -> list[Reading]:
        """A nurse's NIBP reading (a manual cuff) on a session's chair, now: taken in through
        :meth:`ingest` like a device's, flagged ``MANUAL`` (exports and trends show it), so
        it satisfies the NIBP cycle and is judged against the limits. MAP, when not given,
        is (sys + 2 dia) / 3. Audited. Raises ValueError naming a bad value, MonitorError
        (NotFound) for a session that is not open."""
        with self._lock:
            session = self._open_session(session_id)
            now = self.clock.now()
            readings = manual_nibp(session.chair, sys, dia, mean, now, MANUAL_DEVICE)
            result = self.ingest(readings)
            if result.rejected:
                raise MonitorError(f"manual NIBP not taken: {result.rejected[0][1].value}")
            self._audit(OperatorAction(now, user, "manual_nibp", session.chair, session.id,
                                       {r.parameter: r.value for r in readings}))
            return readings

    def set_limits(self, session_id: str, rules: Sequence[dict[str, Any]], user: str, *,
                   confirm: bool = False) -> Session:
        """Make ``rules`` (config form) the session's limit overrides, over the chair's
        profile and the protocol preset. Refused with :class:`InvalidLimits` (naming the
        field, ``rules[1].low``) unless each rule and the merged set are sound
        (``check_rule_set``); a change that makes a limit less sensitive than the profile's
        default raises :class:`ConfirmationNeeded` unless ``confirm``. Audited as
        ``limits_changed`` with each change's old and new value."""
        with self._lock:
            session = self._open_session(session_id)
            overrides = self._parse_rules(rules)
            merged = self._session_rules(session, overrides)
            try:
                check_rule_set(merged)
            except RuleError as exc:
                raise InvalidLimits(exc.path_in(overrides, "rules"), exc.problem, exc.clinical) from None
            changes = compare_rules(self.engine.rules(session.chair), merged,
                                    self.config.chair_rules(session.chair))
            widening = [c.text for c in changes if c.widens]
            if widening and not confirm:
                raise ConfirmationNeeded(widening)
            data = {"rules": [r.as_dict() for r in overrides],
                    "changes": [c.as_dict() for c in changes], "confirmed": bool(widening)}
            detail = "limits: " + ("; ".join(c.text for c in changes) or "unchanged")
            return self._session_step(session, K.LIMITS_CHANGED, user, self.clock.now(), detail, data)

    def end_session(self, session_id: str, user: str, *, patient_left: bool = False) -> Session:
        """End the session. While the chair has open alarms this is refused with
        :class:`ConfirmationRequired` naming them, unless ``patient_left``: the nurse
        confirms that the patient has left the chair, and the alarms close with that note."""
        return self.session_step(session_id, K.SESSION_ENDED, user, "session ended",
                                 {"patient_left": True} if patient_left else None)

    # --- queries -----------------------------------------------------------------------

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

    def memory_bytes(self) -> int:
        return sum(b.nbytes for c in self._chairs.values() for b in c.buffers.values())

    def audit(self, user: str, action: str, chair: str | None = None, target: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
        """Record an action that changes no bay state (login, logout, a failed login, a user
        change, an export) in the operator-action audit chain."""
        self._audit(OperatorAction(self.clock.now(), user, action, chair, target, dict(detail or {})))

    # --- internals ---------------------------------------------------------------------

    def _alarm(self, cmd: Command) -> list[AlarmEvent]:
        """The single place alarm state changes: decide, record, tell."""
        return self._alarm_with(cmd, ())[0]

    def _alarm_with(self, cmd: Command, readings: Sequence[Reading]
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
            ticket = self.store.add(readings, events)
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

    def _session_step(self, session: Session, kind: SessionEventKind, user: str, now: float,
                      detail: str, data: dict[str, Any] | None) -> Session:
        try:
            new, event = step(session, kind, user=user, now=now, detail=detail, data=data)
        except SessionError as exc:
            raise MonitorError(str(exc)) from None
        c = self._chairs[session.chair]
        c.session = new if new.state.is_open else None
        if not new.state.is_open:  # readable at once, before the store's writer commits it
            self._ended[new.id] = new
            while len(self._ended) > 1000:
                self._ended.popitem(last=False)
        action = None if user == SYSTEM_USER else OperatorAction(
            now, user, kind.value, session.chair, session.id, dict(event.data))
        self._record(new, event, action)
        if kind is K.BASELINE_SET:
            self._alarm(SetBaseline(session.chair, new.baseline, now))
        elif kind is K.LIMITS_CHANGED:
            self._apply_session_rules(new, now, user)
        elif kind is K.SESSION_ENDED:
            note = "session ended: patient left (confirmed)" if event.data.get("open_alarms") \
                else "session ended"
            self._alarm(Disarm(session.chair, now, user, note))
            self._alarm(SetRules(session.chair, self.config.chair_rules(session.chair), now, user,
                                 self._latest(c, now)))
        if new.state.is_open and new.state is not session.state:
            self._alarm(self._schedule(new, now))
        return new

    def _check_end(self, session: Session, data: dict[str, Any] | None,
                   detail: str) -> tuple[dict[str, Any], str]:
        """Ending a session closes the chair's alarms: refused while any is open, unless the
        nurse has confirmed that the patient has left (then recorded with the alarms)."""
        open_ = [a for a in self.engine.open_alarms(session.chair) if a.rule not in _WORKFLOW]
        if not open_:
            return {}, detail
        lines = [alarm_line(a) for a in open_]
        if not (data or {}).get("patient_left"):
            label = self._chairs[session.chair].label
            raise ConfirmationRequired(
                f"{label} has {len(open_)} open alarm{'s' if len(open_) > 1 else ''}: ending the "
                "session would close them. Acknowledge and keep monitoring, or confirm that the "
                "patient has left the chair.", lines)
        return ({"patient_left": True, "open_alarms": [
                    {"id": a.id, "message": a.message, "state": a.state.value} for a in open_]},
                f"{detail or 'session ended'}; patient left with open alarms: " + "; ".join(lines))

    def _schedule(self, session: Session, now: float) -> SetSchedule:
        """When the session's running infusion overruns its plan (plus the grace) and when
        its observation is complete: the engine prompts the nurse then."""
        infusion = observation = None
        inf_text = obs_text = ""
        if session.state is SessionState.INFUSING and session.planned_minutes \
                and session.infusion_started_at is not None:
            grace = self.config.alarms.infusion_overrun_grace_min * 60
            infusion = session.infusion_started_at + session.planned_minutes * 60 + grace
            inf_text = f"Infusion running past its planned {session.planned_minutes:g} min"
        if session.state is SessionState.OBSERVATION and session.observation_minutes is not None \
                and session.observation_started_at is not None:
            observation = session.observation_started_at + session.observation_minutes * 60
            obs_text = f"Observation complete ({session.observation_minutes:g} min): review for discharge"
        return SetSchedule(session.chair, now, infusion, observation, inf_text, obs_text)

    def _latest(self, c: _Chair, now: float) -> dict[str, float]:
        """The chair's current values (continuous ones while fresh, the last cuff reading
        within the hour), as alarms are judged against a changed limit."""
        out = {}
        for p in PARAMETERS:
            latest = c.buffers[p.key].latest_valid()
            if latest is not None and now - latest[0] < (
                    self.config.alarms.no_data_after_s if p.continuous else 3600):
                out[p.key] = latest[1]
        return out

    def _session_rules(self, session: Session, overrides: tuple[LimitRule, ...]) -> tuple[LimitRule, ...]:
        """The chair's profile, the protocol preset's limits over it, the overrides over both."""
        preset = self._presets.get(session.protocol)
        return merge_rules(self.config.chair_rules(session.chair), preset.limits if preset else (),
                           overrides)

    def _apply_session_rules(self, session: Session, now: float, user: str | None) -> None:
        try:
            rules = self._session_rules(session, rules_from_dicts(session.limit_overrides))
            check_rule_set(rules)
        except RuleError as exc:  # stored before a configuration change made them unsound
            log.error("session %s: its limit overrides are refused (%s): the profile and "
                      "protocol limits apply", session.id, exc)
            rules = self._session_rules(session, ())
        if rules != self.engine.rules(session.chair):
            self._alarm(SetRules(session.chair, rules, now, user,
                                 self._latest(self._chairs[session.chair], now)))

    @staticmethod
    def _parse_rules(items: Sequence[dict[str, Any]]) -> tuple[LimitRule, ...]:
        if not isinstance(items, list | tuple):
            raise InvalidLimits("rules", "must be a list of limit rules", "the limits are not a list")
        try:
            return rules_from_dicts(items)
        except RuleError as exc:
            raise InvalidLimits(exc.field, exc.problem, exc.clinical) from None

    def _nibp_expected(self, session: Session) -> bool:
        """NIBP overdue applies where a source can deliver NIBP, or the protocol wants
        manual readings (an oximeter-only chair); the engine adds: or one has arrived."""
        preset = self._presets.get(session.protocol)
        return (preset is not None and preset.manual_nibp) or self.config.nibp_can_arrive(session.chair)

    def _open_session(self, session_id: str) -> Session:
        session = self.session(session_id)
        if not session.state.is_open:
            raise MonitorError(f"session {session_id} has ended")
        return session

    def _chair(self, chair: str) -> _Chair:
        try:
            return self._chairs[chair]
        except KeyError:
            raise NotFound(f"no chair {chair!r}") from None

    def _connection(self, c: _Chair, now: float) -> str:
        d = self.config.display
        last = c.last_receive
        reported = max(c.offline_sources.values(), default=None)
        if last is None or now - last >= d.offline_after_s or (reported is not None and last <= reported):
            return "offline"
        return "stale" if now - last >= d.stale_after_s else "online"


#: Reminders of the session's own workflow, which end with it: they need no confirmation.
_WORKFLOW = frozenset(PROMPTS) | {"nibp_overdue"}

_STATE_TEXT = {AlarmState.ACTIVE: "sounding", AlarmState.PAUSED: "audio paused",
               AlarmState.ACKNOWLEDGED: "acknowledged, condition present",
               AlarmState.LATCHED: "latched, not acknowledged"}


def alarm_line(alarm: Alarm) -> str:
    """``*** NIBP MAP 45 < 65 (latched, not acknowledged)``: an open alarm in one line."""
    return f"{alarm.priority.marker} {alarm.message} ({_STATE_TEXT.get(alarm.state, alarm.state.value)})"


def _breaching(param: str, values: np.ndarray, rules: Iterable[LimitRule]) -> np.ndarray:
    """Which values breach one of the absolute limits of ``param`` (NaN never does)."""
    out = np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for r in rules:
            if r.parameter == param and r.threshold is not None:
                out |= values < r.threshold if r.direction == "low" else values > r.threshold
    return out


def _baseline_text(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in sorted(values.items()))
