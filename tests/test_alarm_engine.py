"""Every alarm rule and state transition, driven by explicit times (no sleeping)."""

from __future__ import annotations

import dataclasses

import pytest

from monitor.alarm_engine import (
    Acknowledge,
    AlarmEngine,
    AlarmError,
    Arm,
    Disarm,
    Observe,
    PauseAudio,
    Restore,
    SetBaseline,
    SetConnection,
    SetRules,
    Tick,
    UnknownAlarm,
)
from monitor.alarm_rules import DEFAULT_RULES, AlarmSettings, rules_from_dicts
from monitor.readings import QualityFlag, Reading
from monitor.records import AlarmKind, AlarmState, Priority

A = AlarmState
T0 = 1_800_000_000.0


class Bay:
    """One chair ``c1`` with the default rules; ``feed`` sends readings at given seconds."""

    def __init__(self, settings: AlarmSettings | None = None, rules=DEFAULT_RULES) -> None:
        self.engine = AlarmEngine({"c1": rules, "c2": rules}, settings)
        self.events = []

    def do(self, cmd):
        out = self.engine.apply(cmd)
        self.events.extend(out)
        return out

    def feed(self, param, value, at, flags=0, chair="c1"):
        r = Reading(chair, param, value, T0 + at, T0 + at, "dev1", None, flags)
        return self.do(Observe([r], T0 + at))

    def series(self, param, value, start, stop, step=1.0):
        out = []
        t = start
        while t <= stop:
            out += self.feed(param, value, t)
            t += step
        return out

    def tick(self, at):
        return self.do(Tick(T0 + at))

    def open(self, chair="c1"):
        return self.engine.open_alarms(chair)

    def only(self, chair="c1"):
        alarms = self.open(chair)
        assert len(alarms) == 1, alarms
        return alarms[0]


# --- limits, delay, hysteresis ------------------------------------------------------------


def test_spo2_low_waits_for_its_annunciation_delay():
    bay = Bay()
    assert bay.series("spo2", 88, 0, 14) == []
    (event,) = bay.feed("spo2", 88, 15)
    alarm = event.alarm
    assert (event.old_state, event.new_state) == (None, A.ACTIVE)
    assert alarm.code == "SPO2_LOW" and alarm.priority is Priority.MEDIUM
    assert alarm.message == "SpO2 88 % < 90 %"
    assert (alarm.value, alarm.limit, alarm.kind) == (88, 90, AlarmKind.PHYSIOLOGICAL)
    assert alarm.raised_at == T0 + 15 and alarm.sounding


def test_an_interrupted_condition_restarts_the_delay():
    bay = Bay()
    bay.series("spo2", 88, 0, 10)
    bay.feed("spo2", 92, 11)
    assert bay.series("spo2", 88, 12, 26) == []
    assert bay.feed("spo2", 88, 27)[0].new_state is A.ACTIVE


def test_hysteresis_before_clearing():
    bay = Bay()
    bay.series("spo2", 88, 0, 15)
    assert bay.feed("spo2", 90, 16) == []  # at the limit, inside the 1 % band
    (event,) = bay.feed("spo2", 91, 17)
    assert (event.old_state, event.new_state, event.note) == (A.ACTIVE, A.CLEARED, "condition gone")
    assert event.alarm.cleared_at == T0 + 17
    assert bay.open() == []


def test_high_heart_rate_and_low_heart_rate_defaults():
    bay = Bay()
    bay.series("hr", 125, 0, 9)
    assert bay.open() == []
    bay.feed("hr", 125, 10)
    assert bay.only().message == "HR 125 bpm > 120"
    bay.series("hr", 45, 11, 21)  # 45 clears HR_HIGH at once, HR_LOW after 10 s
    assert [a.code for a in bay.open()] == ["HR_LOW"]


def test_nibp_has_no_delay_and_clears_on_the_next_reading_with_hysteresis():
    bay = Bay()
    (event,) = bay.feed("nibp_sys", 185, 0)
    assert event.alarm.message == "NIBP sys 185 mmHg > 180"
    assert bay.feed("nibp_sys", 178, 900) == []  # inside the 5 mmHg band
    assert bay.feed("nibp_sys", 175, 1800)[0].new_state is A.CLEARED


def test_map_low_is_high_priority():
    bay = Bay()
    (event,) = bay.feed("nibp_map", 60, 0)
    assert event.alarm.priority is Priority.HIGH and event.alarm.code == "NIBP_MAP_LOW"


# --- priority ladder ----------------------------------------------------------------------


def test_higher_rung_supersedes_lower_and_lower_returns_when_it_goes():
    bay = Bay()
    bay.series("spo2", 88, 0, 15)
    medium = bay.only()
    bay.series("spo2", 83, 16, 25)
    events = bay.feed("spo2", 83, 26)  # 10 s below 85
    assert [(e.alarm.priority, e.new_state) for e in events] == [
        (Priority.MEDIUM, A.CLEARED), (Priority.HIGH, A.ACTIVE)]
    assert events[0].note == "superseded by high priority" and events[0].alarm.id == medium.id
    # recovers to 87: the high one latches, the medium condition (never gone) shows at once
    events = bay.feed("spo2", 87, 27)
    assert [(e.alarm.priority, e.new_state) for e in events] == [
        (Priority.HIGH, A.LATCHED), (Priority.MEDIUM, A.ACTIVE)]


def test_lower_rung_is_not_raised_while_a_higher_one_is_open():
    bay = Bay()
    bay.series("spo2", 80, 0, 30)
    assert [a.priority for a in bay.open()] == [Priority.HIGH]


# --- latching -----------------------------------------------------------------------------


def test_high_priority_latches_until_acknowledged():
    bay = Bay()
    bay.series("hr", 160, 0, 5)
    alarm = bay.only()
    assert alarm.priority is Priority.HIGH
    (event,) = bay.feed("hr", 80, 6)
    assert event.new_state is A.LATCHED and not event.alarm.sounding
    assert bay.tick(500) == []
    (event,) = bay.do(Acknowledge(alarm.id, "nurse.ann", T0 + 600))
    assert (event.old_state, event.new_state, event.user) == (A.LATCHED, A.CLEARED, "nurse.ann")
    assert bay.open() == []


def test_latched_alarm_sounds_again_if_its_condition_returns():
    bay = Bay()
    bay.series("hr", 160, 0, 5)
    bay.feed("hr", 80, 6)
    bay.series("hr", 160, 7, 11)
    assert bay.only().state is A.LATCHED
    (event,) = bay.feed("hr", 160, 12)
    assert (event.old_state, event.new_state, event.note) == (
        A.LATCHED, A.ACTIVE, "condition returned")


def test_latching_can_be_switched_off():
    bay = Bay(AlarmSettings(latch_high=False))
    bay.series("hr", 160, 0, 5)
    assert bay.feed("hr", 80, 6)[0].new_state is A.CLEARED


def test_medium_priority_and_technical_alarms_never_latch():
    bay = Bay(AlarmSettings(sensor_off_priority=Priority.HIGH))
    bay.do(Arm("c1", T0))
    for t in range(11):
        bay.feed("spo2", None, t, QualityFlag.SENSOR_OFF)
    assert bay.only().priority is Priority.HIGH
    assert bay.feed("spo2", 97, 12)[0].new_state is A.CLEARED


# --- acknowledge --------------------------------------------------------------------------


def test_acknowledge_keeps_the_alarm_shown_while_the_condition_lasts():
    bay = Bay()
    bay.series("spo2", 88, 0, 15)
    alarm = bay.only()
    (event,) = bay.do(Acknowledge(alarm.id, "nurse.ann", T0 + 20))
    assert (event.old_state, event.new_state, event.user) == (A.ACTIVE, A.ACKNOWLEDGED, "nurse.ann")
    assert event.alarm.acknowledged_by == "nurse.ann" and event.alarm.acknowledged_at == T0 + 20
    assert not event.alarm.sounding
    assert bay.series("spo2", 87, 21, 60) == []
    assert bay.only().state is A.ACKNOWLEDGED
    assert bay.do(Acknowledge(alarm.id, "nurse.bob", T0 + 61)) == []  # twice is a no-op
    assert bay.feed("spo2", 95, 62)[0].new_state is A.CLEARED


def test_acknowledged_high_alarm_does_not_latch():
    bay = Bay()
    bay.series("hr", 35, 0, 5)
    bay.do(Acknowledge(bay.only().id, "n", T0 + 6))
    assert bay.feed("hr", 70, 7)[0].new_state is A.CLEARED


def test_acknowledging_an_unknown_alarm_is_a_clear_error():
    with pytest.raises(UnknownAlarm, match="no open alarm with id 99"):
        Bay().do(Acknowledge(99, "n", T0))


# --- audio pause --------------------------------------------------------------------------


def test_pause_silences_and_reannunciates_after_its_timeout():
    bay = Bay()
    bay.series("spo2", 88, 0, 15)
    (event,) = bay.do(PauseAudio("c1", "nurse.ann", T0 + 20))
    assert (event.new_state, event.user, event.alarm.paused_until) == (
        A.PAUSED, "nurse.ann", T0 + 140)
    assert not event.alarm.sounding
    bay.series("spo2", 88, 21, 139)
    assert bay.tick(139.9) == []
    (event,) = bay.tick(140)
    assert (event.old_state, event.new_state, event.note) == (A.PAUSED, A.ACTIVE, "audio pause expired")
    assert event.alarm.sounding and event.alarm.paused_until is None
    assert bay.engine.paused_until("c1") is None


def test_an_alarm_that_clears_during_the_pause_does_not_come_back():
    bay = Bay()
    bay.series("spo2", 88, 0, 15)
    bay.do(PauseAudio("c1", "n", T0 + 16, duration_s=30))
    assert bay.feed("spo2", 96, 17)[0].new_state is A.CLEARED
    assert bay.tick(60) == []


def test_a_higher_priority_alarm_sounds_during_a_pause_and_an_equal_one_does_not():
    bay = Bay()
    bay.series("spo2", 88, 0, 15)
    bay.do(PauseAudio("c1", "n", T0 + 16))
    # HR > 120 (medium, same as the paused one): raised silent
    bay.series("hr", 130, 16, 26)
    hr = next(a for a in bay.open() if a.code == "HR_HIGH")
    assert hr.state is A.PAUSED and hr.paused_until == T0 + 136
    # SpO2 < 85 (high): sounds through the pause
    bay.series("spo2", 82, 27, 37)
    high = next(a for a in bay.open() if a.priority is Priority.HIGH)
    assert high.state is A.ACTIVE and high.sounding
    (expired,) = bay.tick(136)
    assert expired.alarm.id == hr.id and expired.new_state is A.ACTIVE


def test_pause_needs_a_positive_duration():
    with pytest.raises(AlarmError, match="positive duration"):
        Bay().do(PauseAudio("c1", "n", T0, duration_s=0))


# --- baseline -----------------------------------------------------------------------------


def test_systolic_more_than_20_percent_below_baseline():
    bay = Bay()
    assert bay.feed("nibp_sys", 100, 0) == []  # no baseline yet: the rule is idle
    bay.do(SetBaseline("c1", {"nibp_sys": 140}, T0 + 1))
    assert bay.feed("nibp_sys", 113, 300) == []  # limit is 112
    (event,) = bay.feed("nibp_sys", 110, 600)
    assert event.alarm.code == "NIBP_SYS_BELOW_BASELINE"
    assert event.alarm.limit == 112 and event.alarm.priority is Priority.MEDIUM
    assert event.alarm.message == "NIBP sys 110 mmHg < 112 (baseline 140 -20%)"
    assert bay.feed("nibp_sys", 118, 900)[0].new_state is A.CLEARED


def test_baseline_comes_with_arm():
    bay = Bay()
    bay.do(Arm("c1", T0, baseline={"nibp_sys": 150}))
    assert bay.engine.baseline("c1") == {"nibp_sys": 150}
    assert bay.feed("nibp_sys", 119, 60)[0].alarm.limit == 120


# --- technical alarms ---------------------------------------------------------------------


def test_no_data_after_30_seconds_only_while_armed():
    bay = Bay()
    bay.feed("spo2", 97, 0)
    assert bay.tick(100) == []  # no session: not armed
    bay.do(Arm("c1", T0 + 100))
    bay.feed("spo2", 97, 101)
    assert bay.tick(130.9) == []
    (event,) = bay.tick(131)
    assert event.alarm.code == "NO_DATA" and event.alarm.kind is AlarmKind.TECHNICAL
    assert event.alarm.message == "No SpO2 data" and event.alarm.priority is Priority.MEDIUM
    assert bay.tick(200) == []  # raised once
    assert bay.feed("spo2", 96, 201)[0].new_state is A.CLEARED


def test_no_data_does_not_fire_for_a_parameter_never_seen():
    bay = Bay()
    bay.do(Arm("c1", T0))
    bay.feed("spo2", 97, 1)
    assert [e.alarm.parameter for e in bay.tick(40)] == ["spo2"]  # not hr, never wired


def test_sensor_off_after_10_seconds():
    bay = Bay()
    bay.do(Arm("c1", T0))
    for t in range(10):
        assert bay.feed("spo2", None, t, QualityFlag.SENSOR_OFF) == []
    (event,) = bay.feed("spo2", None, 10, QualityFlag.SENSOR_OFF)
    assert (event.alarm.code, event.alarm.message) == ("SENSOR_OFF", "SpO2 sensor off")
    assert event.alarm.kind is AlarmKind.TECHNICAL
    assert bay.feed("spo2", 97, 11)[0].new_state is A.CLEARED


def test_no_sensor_flag_has_its_own_message():
    bay = Bay()
    bay.do(Arm("c1", T0))
    for t in range(11):
        bay.feed("pr", None, t, QualityFlag.NO_SENSOR)
    assert bay.only().message == "SpO2 sensor not connected"


def test_device_offline_reported_by_an_adapter():
    bay = Bay()
    assert bay.do(SetConnection("c1", "rad97-1", False, T0)) == []  # not armed
    bay.do(Arm("c1", T0))
    (event,) = bay.do(SetConnection("c1", "rad97-1", False, T0 + 1, "port closed", transport="serial"))
    assert event.alarm.code == "DEVICE_OFFLINE"
    # words a nurse uses; the source's name and the detail go to the event's note (and the log)
    assert event.alarm.message == "Monitor offline (serial line)"
    assert event.note == "raised: source rad97-1, port closed"
    assert bay.do(SetConnection("c1", "rad97-1", False, T0 + 2)) == []
    assert bay.do(SetConnection("c1", "rad97-1", True, T0 + 3))[0].new_state is A.CLEARED


@pytest.mark.parametrize("source, transport, message", [
    ("mqtt:c06", "mqtt", "Monitor offline (MQTT)"),
    ("ox-3", "serial", "Monitor offline (serial line)"),
    ("gw1", "hl7", "Monitor offline (HL7 gateway)"),
    ("link:broker1", "mqtt", "Monitor link lost (MQTT broker)"),
    ("odd", "", "Monitor offline"),
])
def test_offline_messages_name_the_transport_never_the_source(source, transport, message):
    bay = Bay()
    bay.do(Arm("c1", T0))
    (event,) = bay.do(SetConnection("c1", source, False, T0 + 1, "MQTT status offline, device sim-c06",
                                    transport=transport))
    assert event.alarm.message == message
    assert source.removeprefix("link:") not in event.alarm.message and "sim-c06" not in event.alarm.message
    assert event.note == f"raised: source {source.removeprefix('link:')}, MQTT status offline, device sim-c06"


def test_nibp_overdue_after_interval_plus_grace():
    bay = Bay()
    bay.do(Arm("c1", T0, nibp_interval_s=900))
    assert bay.tick(1200) == []
    (event,) = bay.tick(1201)
    assert (event.alarm.code, event.alarm.priority) == ("NIBP_OVERDUE", Priority.LOW)
    assert bay.feed("nibp_sys", 120, 1300)[0].new_state is A.CLEARED
    assert bay.tick(1300 + 1200) == []
    assert bay.tick(1300 + 1201)[0].alarm.code == "NIBP_OVERDUE"


# --- pulse-rate fallback, rules, sessions, restore ----------------------------------------


def test_pulse_rate_limits_apply_only_without_an_ecg_heart_rate():
    bay = Bay()
    for t in range(15):
        bay.feed("hr", 80, t)
        bay.feed("pr", 130, t)
    assert bay.open() == []
    bay.series("pr", 130, 100, 110)  # ECG gone for 30 s: the pulse rate is judged
    assert bay.only().code == "PR_HIGH"


def test_changing_rules_applies_new_limits_and_drops_removed_rules():
    bay = Bay()
    bay.series("spo2", 88, 0, 15)
    rules = rules_from_dicts([{"parameter": "spo2", "low": 86, "priority": "medium",
                               "delay_s": 5}])
    (event,) = bay.do(SetRules("c1", rules, T0 + 16, user="charge.nurse"))
    assert (event.new_state, event.note, event.user) == (A.CLEARED, "limits changed", "charge.nurse")
    bay.series("spo2", 88, 17, 40)
    assert bay.open() == []
    bay.series("spo2", 85, 41, 46)
    assert bay.only().message == "SpO2 85 % < 86 %"


def test_disarm_clears_every_open_alarm_of_the_chair_only():
    bay = Bay()
    bay.do(Arm("c1", T0))
    bay.series("spo2", 88, 0, 15)
    bay.feed("nibp_sys", 190, 16)
    bay.feed("nibp_sys", 190, 16, chair="c2")
    events = bay.do(Disarm("c1", T0 + 20, user="n"))
    assert {e.new_state for e in events} == {A.CLEARED} and len(events) == 2
    assert bay.open("c1") == [] and len(bay.open("c2")) == 1


def test_restore_brings_back_open_alarms_and_continues_ids():
    bay = Bay()
    bay.series("spo2", 88, 0, 15)
    bay.do(PauseAudio("c1", "n", T0 + 16))
    saved = bay.open()
    fresh = Bay()
    fresh.do(Restore(saved, next_id=bay.engine.next_id))
    assert fresh.open() == saved
    assert fresh.engine.paused_until("c1") == T0 + 136
    assert fresh.tick(136)[0].new_state is A.ACTIVE
    fresh.series("hr", 130, 200, 210)
    assert max(a.id for a in fresh.open()) == bay.engine.next_id


def test_unknown_chair_in_an_operator_command_is_an_error():
    with pytest.raises(AlarmError, match="unknown chair 'c9'"):
        Bay().do(PauseAudio("c9", "n", T0))


def test_every_event_chains_from_the_previous_state_of_its_alarm():
    bay = Bay()
    bay.do(Arm("c1", T0, nibp_interval_s=300))
    bay.series("spo2", 84, 0, 20)
    bay.do(PauseAudio("c1", "n", T0 + 21, duration_s=10))
    bay.series("spo2", 84, 22, 40)
    bay.tick(41)
    bay.feed("spo2", 97, 42)
    bay.tick(700)
    bay.do(Acknowledge(bay.open()[0].id, "n", T0 + 701))
    state = {}
    for event in bay.events:
        assert event.old_state == state.get(event.alarm_id)
        assert event.alarm.state is event.new_state and event.alarm.updated_at == event.time
        state[event.alarm_id] = event.new_state
    assert len(bay.events) >= 6


def test_demo_values_do_not_raise_alarms():
    bay = Bay()
    for t in range(20):
        bay.feed("spo2", 80, t, QualityFlag.DEMO)
    assert bay.open() == []


def test_alarm_snapshot_is_immutable():
    bay = Bay()
    (event,) = bay.feed("nibp_sys", 210, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.alarm.state = A.CLEARED  # type: ignore[misc]


# --- one clinical event, one alarm (issue 10 point 7) -------------------------------------


def _cycle(bay, sys_, dia, mean, at, chair="c1", device_dt=0.0):
    """One cuff cycle: three readings with the same device time, in one batch."""
    t = T0 + at + device_dt
    readings = [Reading(chair, k, v, t, T0 + at, "cuff", None, 0)
                for k, v in (("nibp_sys", sys_), ("nibp_dia", dia), ("nibp_map", mean))]
    return bay.do(Observe(readings, T0 + at))


def test_an_nibp_cycle_breaking_several_limits_is_one_alarm_naming_every_value():
    bay = Bay()
    (event,) = _cycle(bay, 75, 40, 50, 0)
    alarm = event.alarm
    assert (alarm.priority, alarm.code, alarm.kind) == (
        Priority.HIGH, "NIBP_SYS_LOW", AlarmKind.PHYSIOLOGICAL)
    assert alarm.message == "NIBP 75/40 mmHg (MAP 50): sys 75 < 80, MAP 50 < 65"
    assert (alarm.value, alarm.limit, alarm.parameter) == (75, 80, "nibp_sys")
    # one acknowledge and nothing is left to acknowledge
    bay.do(Acknowledge(alarm.id, "nurse.ann", T0 + 10))
    assert [a.state for a in bay.open()] == [A.ACKNOWLEDGED]
    # the next cycle: sys recovered but MAP still low: the same alarm stands
    assert _cycle(bay, 95, 50, 62, 300) == []
    # both recovered past their hysteresis: it clears (acknowledged: no latch)
    (gone,) = _cycle(bay, 110, 60, 75, 600)
    assert (gone.alarm_id, gone.new_state) == (alarm.id, A.CLEARED)
    assert bay.open() == []


def test_an_nibp_cycle_names_only_the_highest_rung_of_a_ladder_and_the_baseline():
    bay = Bay()
    bay.do(SetBaseline("c1", {"nibp_sys": 140}, T0))
    (event,) = _cycle(bay, 85, 50, 60, 0)
    assert event.alarm.message == ("NIBP 85/50 mmHg (MAP 60): MAP 60 < 65, sys 85 < 90, "
                                   "sys 85 < 112 (baseline 140 -20%)")
    assert event.alarm.priority is Priority.HIGH and event.alarm.code == "NIBP_MAP_LOW"


def test_a_worse_nibp_cycle_supersedes_and_a_better_one_latches_and_steps_down():
    bay = Bay()
    (medium,) = _cycle(bay, 88, 50, 66, 0)
    assert medium.alarm.priority is Priority.MEDIUM
    assert medium.alarm.message == "NIBP 88/50 mmHg (MAP 66): sys 88 < 90"
    events = _cycle(bay, 78, 45, 55, 300)
    assert [(e.alarm.priority, e.new_state, e.note) for e in events] == [
        (Priority.MEDIUM, A.CLEARED, "superseded by high priority"), (Priority.HIGH, A.ACTIVE, "raised")]
    # 88/60 (70): the high condition is gone (latched, unacknowledged); the medium one is raised
    events = _cycle(bay, 88, 60, 71, 600)
    assert [(e.alarm.priority, e.new_state) for e in events] == [
        (Priority.HIGH, A.LATCHED), (Priority.MEDIUM, A.ACTIVE)]
    assert events[1].alarm.message == "NIBP 88/60 mmHg (MAP 71): sys 88 < 90"
    # back to high: the latched alarm sounds again, the medium one is superseded
    events = _cycle(bay, 70, 40, 50, 900)
    assert [(e.alarm.priority, e.new_state, e.note) for e in events] == [
        (Priority.MEDIUM, A.CLEARED, "superseded by high priority"),
        (Priority.HIGH, A.ACTIVE, "condition returned")]
    assert events[1].alarm.message == "NIBP 70/40 mmHg (MAP 50): sys 70 < 80, MAP 50 < 65"
    assert len(bay.open()) == 1


def test_nibp_cycles_of_two_chairs_in_one_batch_are_judged_apart():
    bay = Bay()
    readings = [Reading(c, k, v, T0, T0, "cuff", None, 0) for c in ("c1", "c2")
                for k, v in (("nibp_sys", 75), ("nibp_dia", 40), ("nibp_map", 50))]
    events = bay.do(Observe(readings, T0))
    assert sorted(e.chair for e in events) == ["c1", "c2"]


def test_a_device_offline_raises_no_no_data_for_the_parameters_it_delivers():
    bay = Bay()
    bay.do(Arm("c1", T0))
    for t in range(10):  # an oximeter on serial (SpO2, PR) and ECG from another source
        bay.feed("spo2", 97, t)
        bay.feed("pr", 72, t)
        bay.feed("hr", 72, t)
    (offline,) = bay.do(SetConnection("c1", "ox", False, T0 + 10, "port closed",
                                      parameters=frozenset({"spo2", "pr"})))
    assert offline.alarm.code == "DEVICE_OFFLINE"
    for t in range(10, 120):
        bay.feed("hr", 72, t)
        bay.tick(t)
    assert [a.code for a in bay.open()] == ["DEVICE_OFFLINE"]  # one event, one alarm
    # the ECG source's own parameter still raises its "No data" (not over-suppressed)
    assert bay.tick(150)[0].alarm.message == "No HR data"
    # back online: "No data" counts from the reconnection, not from before the outage
    bay.do(SetConnection("c1", "ox", True, T0 + 200, parameters=frozenset({"spo2", "pr"})))
    assert bay.tick(229) == []
    assert sorted(e.alarm.message for e in bay.tick(230)) == ["No PR data", "No SpO2 data"]


def test_a_device_going_offline_takes_over_the_no_data_alarms_already_raised():
    bay = Bay()
    bay.do(Arm("c1", T0))
    bay.feed("spo2", 97, 0)
    bay.feed("pr", 72, 0)
    assert len(bay.tick(31)) == 2  # the device went quiet before its adapter noticed
    events = bay.do(SetConnection("c1", "mqtt:c1", False, T0 + 45, "last will"))  # every parameter
    assert sorted((e.alarm.code, e.new_state) for e in events) == [
        ("DEVICE_OFFLINE", A.ACTIVE), ("NO_DATA", A.CLEARED), ("NO_DATA", A.CLEARED)]
    assert {e.note for e in events if e.alarm.code == "NO_DATA"} == {"device mqtt:c1 offline"}
    assert bay.tick(100) == [] and [a.code for a in bay.open()] == ["DEVICE_OFFLINE"]


def test_sensor_off_is_sensor_off_and_never_also_no_data():
    bay = Bay()
    bay.do(Arm("c1", T0))
    bay.feed("spo2", 97, 0)
    bay.feed("pr", 72, 0)
    for t in range(1, 120):
        bay.feed("pr", None, t, QualityFlag.SENSOR_OFF)
        bay.feed("spo2", None, t, QualityFlag.SENSOR_OFF)
        bay.tick(t)
    (alarm,) = bay.open()
    assert (alarm.code, alarm.message) == ("SENSOR_OFF", "SpO2 sensor off")
    assert not any(e.alarm.code == "NO_DATA" for e in bay.events)
    # the device stops sending at all: now it is "No data"
    assert {e.alarm.message for e in bay.tick(150)} == {"No SpO2 data", "No PR data"}


def test_a_sensor_off_report_clears_a_no_data_alarm():
    bay = Bay()
    bay.do(Arm("c1", T0))
    bay.feed("spo2", 97, 0)
    (no_data,) = bay.tick(30)
    (event,) = bay.feed("spo2", None, 31, QualityFlag.NO_SENSOR)
    assert (event.alarm_id, event.new_state) == (no_data.alarm_id, A.CLEARED)


# --- device clocks and delayed data (issue 10 point 8) ------------------------------------


def _late(bay, param, value, at, device_dt):
    r = Reading("c1", param, value, T0 + at + device_dt, T0 + at, "dev1", None, 0)
    return bay.do(Observe([r], T0 + at))


def test_a_device_clock_ahead_never_postpones_an_annunciation_delay():
    bay = Bay()
    _late(bay, "spo2", 80, 0, +240)  # stamped 4 minutes in the future
    for t in range(1, 10):
        assert _late(bay, "spo2", 80, t, 0) == []
    (event,) = _late(bay, "spo2", 80, 10, 0)  # the normal 10 s delay of SpO2 < 85
    assert (event.alarm.code, event.alarm.priority) == ("SPO2_LOW", Priority.HIGH)


def test_a_device_clock_jumping_back_restarts_the_delay_instead_of_stalling_it():
    bay = Bay()
    for t in range(5):
        _late(bay, "hr", 160, t, 0)
    for t in range(5, 10):  # the device's clock is reset an hour back
        assert _late(bay, "hr", 160, t, -3600) == []
    (event,) = _late(bay, "hr", 160, 10, -3600)  # HR > 150 after its 5 s, from the jump
    assert (event.alarm.code, event.alarm.priority) == ("HR_HIGH", Priority.HIGH)


def test_a_sensor_off_delay_is_not_postponed_by_a_device_clock_ahead():
    bay = Bay()
    bay.do(Arm("c1", T0))
    r = Reading("c1", "spo2", None, T0 + 280, T0, "dev1", None, int(QualityFlag.SENSOR_OFF))
    bay.do(Observe([r], T0))
    for t in range(1, 11):
        bay.feed("spo2", None, t, QualityFlag.SENSOR_OFF)
    assert bay.only().code == "SENSOR_OFF"


def test_delayed_data_is_a_technical_alarm_that_clears_when_current():
    bay = Bay()
    bay.do(Arm("c1", T0))
    for t in range(5):
        assert _late(bay, "spo2", 97, t, -75) == []
    assert bay.engine.delayed("c1") == {"spo2": 75}
    (event,) = _late(bay, "spo2", 97, 5, -75)  # lasting 5 s on the monitor's clock
    alarm = event.alarm
    assert (alarm.code, alarm.kind, alarm.priority) == ("DATA_DELAYED", AlarmKind.TECHNICAL, Priority.MEDIUM)
    assert alarm.message == "SpO2 data delayed (75 s behind)"
    assert _late(bay, "spo2", 97, 6, -75) == []  # raised once
    (event,) = _late(bay, "spo2", 97, 7, -1)
    assert (event.new_state, event.note) == (A.CLEARED, "data current again")
    assert bay.engine.delayed("c1") == {}


def test_a_backlog_delivered_at_once_is_not_a_delayed_alarm():
    bay = Bay()
    bay.do(Arm("c1", T0))
    for lag in range(60, -1, -1):  # a broker's queue after a reconnection, in one second
        _late(bay, "spo2", 97, 100, -lag)
    assert bay.open() == [] and bay.engine.delayed("c1") == {}


def test_delayed_is_tracked_without_a_session_but_alarms_only_with_one():
    bay = Bay()
    for t in range(20):
        _late(bay, "hr", 72, t, -120)
    assert bay.engine.delayed("c1") == {"hr": 120} and bay.open() == []
    bay.do(Arm("c1", T0 + 20))
    assert _late(bay, "hr", 72, 21, -120)[0].alarm.message == "HR data delayed (120 s behind)"


# --- NIBP overdue only where NIBP is expected (issue 10 point 6) --------------------------


def test_nibp_overdue_only_where_nibp_can_arrive():
    bay = Bay()
    bay.do(Arm("c1", T0, nibp_interval_s=900, nibp_expected=False))  # oximeter-only chair
    bay.do(Arm("c2", T0, nibp_interval_s=900))
    assert [e.chair for e in bay.tick(5000)] == ["c2"]
    # a reading arrives after all (a manual one, or a source not in the configuration):
    # from then on the cycle is watched
    bay.feed("nibp_sys", 120, 5100)
    assert bay.tick(5100 + 1200) == []
    assert bay.tick(5100 + 1201)[0].alarm.code == "NIBP_OVERDUE"
