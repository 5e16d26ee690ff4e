"""The session half of the core (:class:`SessionActions`, mixed into
:class:`monitor.core.Monitor`): starting a session, its steps (infusion events, notes,
observation, end), baselines (entered, or proposed from pre-infusion readings and
confirmed), a nurse's manual NIBP, and the session's limit overrides, each audited; and
what the alarm engine must be told when a session changes (rules, schedule, arming).
Everything here runs under the core's lock, through the core's single alarm path.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from monitor.alarm_engine import AlarmEngine, Arm, Command, Disarm, SetBaseline, SetRules, SetSchedule
from monitor.alarm_rules import LimitRule, RuleError, check_rule_set, compare_rules, rules_from_dicts
from monitor.clock import Clock
from monitor.config import BayConfig, merge_rules
from monitor.core.results import (
    MANUAL_DEVICE,
    SYSTEM_USER,
    WORKFLOW_RULES,
    BaselineProposal,
    ChairState,
    ConfirmationNeeded,
    ConfirmationRequired,
    InvalidLimits,
    MonitorError,
    alarm_line,
)
from monitor.parameters import PARAMETERS
from monitor.readings import Reading, check_value, manual_nibp
from monitor.records import AlarmEvent, OperatorAction, Session, SessionEvent, SessionEventKind, SessionState
from monitor.seam import IngestResult
from monitor.sessions import SessionError, new_session, step

__all__ = ["SessionActions"]

log = logging.getLogger("chairside.core")
K = SessionEventKind


class SessionActions:
    """Session actions of :class:`monitor.core.Monitor` (which provides the state below)."""

    config: BayConfig
    clock: Clock
    engine: AlarmEngine
    _lock: threading.RLock
    _chairs: dict[str, ChairState]
    _presets: dict[str, Any]
    _ended: OrderedDict[str, Session]
    # the core's own paths, provided by Monitor
    _alarm: Callable[[Command], list[AlarmEvent]]
    _audit: Callable[[OperatorAction], None]
    _record: Callable[[Session, SessionEvent, OperatorAction | None], None]
    _chair: Callable[[str], ChairState]
    session: Callable[[str], Session]
    ingest: Callable[[Iterable[Reading]], IngestResult]

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
        open_ = [a for a in self.engine.open_alarms(session.chair) if a.rule not in WORKFLOW_RULES]
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

    def _latest(self, c: ChairState, now: float) -> dict[str, float]:
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
