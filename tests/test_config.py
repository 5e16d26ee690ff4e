"""Configuration: the shipped example is valid; each kind of error names file, key, problem."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import T0

from monitor.config import ConfigError, load_config
from monitor.localtime import machine_zone, zone_name
from station.cli import main

EXAMPLE = Path(__file__).parent.parent / "deploy" / "chairside.example.toml"
GOOD_CHAIRS = '[[chairs]]\nid = "c01"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bay.toml"
    path.write_text(text)
    return path


def test_shipped_example_is_valid():
    config = load_config(EXAMPLE)
    assert [c.id for c in config.chairs] == ["c01", "c02"]
    assert config.store.path == EXAMPLE.parent / "chairside.db"  # relative to the file
    assert {r.id for r in config.chair_rules("c02")} >= {"spo2_low_limit_medium"}
    assert next(r for r in config.chair_rules("c02") if r.id == "spo2_low_limit_medium").threshold == 88
    assert list(config.presets()) == ["magnesium"]


def test_defaults_when_only_chairs_are_given(tmp_path):
    config = load_config(write(tmp_path, GOOD_CHAIRS))
    assert config.dashboard.host == "127.0.0.1" and config.alarms.audio_pause_s == 120
    assert set(config.presets()) == {"magnesium", "ketamine", "dhe", "antiemetic", "fluids"}
    assert all(p.example for p in config.presets().values())


@pytest.mark.parametrize(("text", "message"), [
    ("[bay\nid = 1", "bay.toml: not valid TOML: "),
    ("", "bay.toml: chairs: required key is missing"),
    ("chairs = []", "bay.toml: chairs: must have at least one entry"),
    (GOOD_CHAIRS + "[alarms]\naudio_pause = 5\n", "bay.toml: alarms.audio_pause: unknown key"),
    (GOOD_CHAIRS + "[alarms]\naudio_pause_s = 'two minutes'\n",
     "bay.toml: alarms.audio_pause_s: Input should be a valid number"),
    (GOOD_CHAIRS + "[alarms]\naudio_pause_s = -1\n",
     "bay.toml: alarms.audio_pause_s: Input should be greater than 0"),
    (GOOD_CHAIRS + "[alarms]\nno_data_priority = 'urgent'\n",
     "bay.toml: alarms.no_data_priority: priority must be high, medium or low, not 'urgent'"),
    (GOOD_CHAIRS + "[dashboard]\nport = 70000\n", "bay.toml: dashboard.port: Input should be less"),
    ('[[chairs]]\nid = "chair 1"\n',
     "bay.toml: chairs[0].id: must be 1-32 letters, digits, '_' or '-' (got 'chair 1')"),
    ('[[chairs]]\nid = "c1"\n[[chairs]]\nid = "c1"\n', "bay.toml: chairs: duplicate chair id(s) c1"),
    ('[[chairs]]\nid = "c1"\nprofile = "child"\n', "bay.toml: chairs[0].profile: no limit profile 'child'"),
    ('[bay]\ndefault_profile = "x"\n' + GOOD_CHAIRS, "bay.toml: bay.default_profile: no limit profile 'x'"),
    (GOOD_CHAIRS + "[limit_profiles.p]\nrules = [{parameter = 'spo2', low = 90, high = 99}]\n",
     "bay.toml: limit_profiles.p.rules[0]: give exactly one of low, high"),
    (GOOD_CHAIRS + "[limit_profiles.p]\nrules = [{parameter = 'nibp_sys', low = 90, delay_s = 5}]\n",
     "bay.toml: limit_profiles.p.rules[0].delay_s: nibp_sys is intermittent: it takes no annunciation delay"),
    (GOOD_CHAIRS + "[limit_profiles.p]\nrules = [{parameter = 'spo2', low = 90, priority = 'medium'},"
     " {parameter = 'spo2', low = 88, priority = 'medium'}]\n",
     "bay.toml: limit_profiles.p.rules[1]: a second rule for the SpO2 low limit (the first is [0])"),
    (GOOD_CHAIRS + "[protocols.x]\ndrug = 'y'\n", "bay.toml: protocols.x.label: required key is missing"),
    (GOOD_CHAIRS + "[bay]\ntimezone = 'Europe/Berln'\n",
     "bay.toml: bay.timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?): use an "
     "IANA time zone name such as 'Europe/Berlin'"),
    (GOOD_CHAIRS + "[bay]\ntimezone = 'CET-1CEST,M3.5.0,M10.5.0/3'\n",  # a POSIX rule, not a name
     "bay.toml: bay.timezone: unknown time zone 'CET-1CEST,M3.5.0,M10.5.0/3'"),
    (GOOD_CHAIRS + "[bay]\ntimezone = '/etc/localtime'\n",
     "bay.toml: bay.timezone: unknown time zone '/etc/localtime'"),
    (GOOD_CHAIRS + "[bay]\ntimezone = 'right/UTC'\n",  # leap-second clocks: not civil time
     "bay.toml: bay.timezone: unknown time zone 'right/UTC'"),
    (GOOD_CHAIRS + "[bay]\ntimezone = ''\n", "bay.toml: bay.timezone: must be an IANA time zone name"),
    (GOOD_CHAIRS + "[bay]\ntimezone = 1\n", "bay.toml: bay.timezone: Input should be a valid string"),
    (GOOD_CHAIRS + "[protocols.x]\nlabel = 'x'\ndrug = 'y'\nlimits = [{parameter = 'hr', high = 'fast'}]\n",
     "bay.toml: protocols.x.limits[0].high: must be a number (got 'fast')"),
])
def test_each_kind_of_error_names_file_key_and_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value).replace(str(tmp_path) + "/", "")


@pytest.mark.parametrize(("zone", "january", "july"), [
    ("Europe/Berlin", 1, 2), ("America/New_York", -5, -4), ("Asia/Kolkata", 5.5, 5.5), ("UTC", 0, 0)])
def test_the_bay_time_zone_is_an_iana_name(tmp_path, zone, january, july):
    config = load_config(write(tmp_path, f"[bay]\ntimezone = '{zone}'\n" + GOOD_CHAIRS))
    assert config.bay.timezone == zone and config.bay.zone.key == zone
    for t, hours in ((T0, january), (T0 + 180 * 86400, july)):  # 2027-01-15 and 2027-07-14
        assert datetime.fromtimestamp(t, config.bay.zone).utcoffset() == timedelta(hours=hours)


def test_the_default_time_zone_is_the_machines(tmp_path):
    config = load_config(write(tmp_path, GOOD_CHAIRS))
    assert config.bay.timezone is None and config.bay.zone is machine_zone()
    for t in (T0, T0 + 180 * 86400):  # the C library's local time, winter and summer
        local = datetime.fromtimestamp(t, config.bay.zone)
        assert local.utcoffset() == timedelta(seconds=time.localtime(t).tm_gmtoff)
        assert local.replace(tzinfo=None) == datetime.fromtimestamp(t)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_check_config_command(tmp_path, capsys):
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "OK: bay 'bay1', 2 chairs" in out
    assert f"times shown in {zone_name(machine_zone())} (the machine's zone: set [bay] timezone)" in out
    berlin = write(tmp_path, "[bay]\ntimezone = 'Europe/Berlin'\n" + GOOD_CHAIRS)
    assert main(["check-config", str(berlin)]) == 0
    out = capsys.readouterr().out.replace(f"{tmp_path}/", "")
    assert "store chairside.db, times shown in Europe/Berlin\n" in out
    bad = write(tmp_path, '[[chairs]]\nid = "a b"\n')
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: chairs[0].id: must be 1-32 letters" in err


# --- limits: validated as clinicians expect (issue 10, point 2) ---------------------------

PROFILE = GOOD_CHAIRS + "[limit_profiles.p]\nrules = [{{{}}}]\n"


@pytest.mark.parametrize(("rule", "message"), [
    # TOML has nan and inf: refused, naming the key
    ("parameter = 'spo2', low = nan", "low: not a finite number (nan)"),
    ("parameter = 'hr', high = inf", "high: not a finite number (inf)"),
    ("parameter = 'hr', high = -inf", "high: not a finite number (-inf)"),
    ("parameter = 'hr', high = 1e308", "high: must be from 20 to 300 /min (got 1e+308)"),
    ("parameter = 'spo2', low = 150", "low: must be from 50 to 100 % (got 150)"),
    ("parameter = 'spo2', low = 40", "low: must be from 50 to 100 % (got 40)"),
    ("parameter = 'spo2', low = 90, delay_s = nan", "delay_s: not a finite number (nan)"),
    ("parameter = 'spo2', low = 90, delay_s = 61", "delay_s: must be from 0 to 60 s (got 61)"),
    ("parameter = 'spo2', low = 90, delay_s = -1", "delay_s: must be from 0 to 60 s (got -1)"),
    ("parameter = 'spo2', low = 90, hysteresis = 6", "hysteresis: must be from 0 to 5 %"),
    ("parameter = 'spo2', low = 90, hysteresis = nan", "hysteresis: not a finite number"),
    ("parameter = 'nibp_sys', below_baseline_pct = 100",
     "below_baseline_pct: must be more than 0 and less than 100 % (got 100)"),
    ("parameter = 'nibp_sys', below_baseline_pct = nan", "below_baseline_pct: not a finite number (nan)"),
    ("parameter = 'spo2', low = true", "low: must be a number (got True)"),
    ("parameter = 'spo2', low = 90, priority = 'urgent'",
     "priority: must be high, medium or low, not 'urgent'"),
    ("parameter = 'spo2', low = 90, colour = 'red'", "colour: unknown key"),
    ("low = 90", "parameter: required key is missing"),
])
def test_a_limit_rule_is_refused_naming_file_and_key(tmp_path, rule, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, PROFILE.format(rule)))
    assert f"{tmp_path}/bay.toml: limit_profiles.p.rules[0].{message}" in str(info.value)


@pytest.mark.parametrize(("rules", "message"), [
    ("{parameter = 'hr', high = 120}, {parameter = 'hr', high = 60, priority = 'high'}",
     "limit_profiles.p.rules[1].high: HR high limit (high priority) 60 /min must be above the "
     "medium-priority limit 120 /min"),
    ("{parameter = 'spo2', low = 90}, {parameter = 'spo2', low = 90, priority = 'high'}",
     "limit_profiles.p.rules[1].low: SpO2 low limit (high priority) 90 % must be below the "
     "medium-priority limit 90 %"),
    ("{parameter = 'hr', low = 50}, {parameter = 'hr', high = 50}",
     "limit_profiles.p.rules[0].low: HR low limit 50 /min must be below the HR high limit 50 /min"),
    ("{parameter = 'nibp_sys', below_baseline_pct = 20}, "
     "{parameter = 'nibp_sys', below_baseline_pct = 10, priority = 'high'}",
     "limit_profiles.p.rules[1].below_baseline_pct: NIBP sys below baseline (high priority) 10 % must be "
     "larger than the medium-priority limit 20 %"),
])
def test_a_limit_profile_is_a_sound_ladder(tmp_path, rules, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD_CHAIRS + f"[limit_profiles.p]\nrules = [{rules}]\n"))
    assert f"bay.toml: {message}" in str(info.value)


def test_a_protocol_preset_is_checked_over_each_profile_in_use(tmp_path):
    preset = "[protocols.k]\nlabel = 'K'\ndrug = 'k'\nlimits = [{parameter = 'hr', high = 160}]\n"
    with pytest.raises(ConfigError) as info:  # over the built-in adult profile: HR high (high) 150
        load_config(write(tmp_path, GOOD_CHAIRS + preset))
    assert ("bay.toml: protocols.k.limits[0].high: over limit profile 'adult', HR high limit (high priority) "
            "150 /min must be above the medium-priority limit 160 /min") in str(info.value)
    wide = "[limit_profiles.wide]\nrules = [{parameter = 'hr', high = 170, priority = 'high'}]\n"
    # only on a chair with a profile whose HIGH limit lies above it: accepted
    config = load_config(write(tmp_path, '[bay]\ndefault_profile = "wide"\n' + GOOD_CHAIRS + preset + wide))
    assert config.presets()["k"].limits[0].threshold == 160
    # the shipped examples (used when a bay defines no presets) are checked the same way
    strict = ("[limit_profiles.adult]\nrules = [{parameter = 'spo2', low = 96},"
              " {parameter = 'spo2', low = 94, priority = 'high'}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD_CHAIRS + strict))
    assert ("shipped example protocol 'ketamine' (limits[3].low): over limit profile 'adult', SpO2 low limit "
            "(high priority) 94 % must be below the medium-priority limit 92 %") in str(info.value)


def test_the_default_profile_and_shipped_presets_are_sound():
    from monitor.alarm_rules import DEFAULT_RULES, check_rule_set
    from monitor.config import example_presets, merge_rules

    check_rule_set(DEFAULT_RULES)
    for preset in example_presets().values():
        check_rule_set(merge_rules(DEFAULT_RULES, preset.limits))


def serial_source(port: str) -> str:
    return (GOOD_CHAIRS + '[[sources]]\nkind = "serial"\nname = "ox"\nchair = "c01"\n'
            f'protocol = "masimo"\nport = "{port}"\n')


@pytest.mark.parametrize("port", [
    "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A1B2C3-if00-port0", "socket://10.1.2.3:4001",
    "rfc2217://nport-bay1.example:4001", "rfc2217://[fd00::5]:4001?ign_set_control&timeout=5"])
def test_a_serial_port_is_a_path_or_a_terminal_servers_url(tmp_path, port):
    (source,) = load_config(write(tmp_path, serial_source(port))).sources
    assert source.port == port and source.link_idle_s == 60


@pytest.mark.parametrize(("port", "message"), [
    ("", "sources[0].serial.port: must be a device path"),
    ("telnet://10.1.2.3:4001",
     "sources[0].serial.port: 'telnet://10.1.2.3:4001': unsupported scheme 'telnet'"),
    ("loop://", "unsupported scheme 'loop'"),
    ("socket://10.1.2.3", "sources[0].serial.port: 'socket://10.1.2.3': the TCP port number is missing"),
    ("socket://:4001", "the host is missing"),
    ("socket://10.1.2.3:99999", "the TCP port must be a number from 1 to 65535"),
    ("socket://10.1.2.3:http", "the TCP port must be a number from 1 to 65535"),
    ("socket://10.1.2.3:4001/ttyS0", "a terminal server's URL is socket://host:port only"),
    ("socket://10.1.2.3:4001?logging=debug", "socket:// takes no options"),
    ("rfc2217://10.1.2.3:4001?baud=9600", "unknown rfc2217 option 'baud=9600'"),
    ("rfc2217://10.1.2.3:4001?timeout=soon", "timeout must be a number of seconds above 0"),
])
def test_a_bad_serial_port_is_refused_naming_the_key(tmp_path, port, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, serial_source(port)))
    assert message in str(info.value)


MQTT = GOOD_CHAIRS + '[[sources]]\nkind = "mqtt"\nname = "b"\n'


def test_a_clustered_mqtt_broker_is_a_list_of_endpoints_tried_in_order(tmp_path):
    config = load_config(write(tmp_path, MQTT + 'brokers = ["n1:1883", "10.0.0.2:1884", "[fd00::3]:8883"]\n'))
    (source,) = config.sources
    assert source.endpoints == (("n1", 1883), ("10.0.0.2", 1884), ("fd00::3", 8883))
    (single,) = load_config(write(tmp_path, MQTT + 'host = "mqtt.example"\nport = 8883\n')).sources
    assert single.brokers == () and single.endpoints == (("mqtt.example", 8883),)


@pytest.mark.parametrize(("keys", "message"), [
    ('brokers = ["n1:1883"]\nhost = "n2"\n',
     "sources[0].mqtt: brokers and host are both set: list a clustered broker's nodes in brokers, "
     "or name one broker with host and port"),
    ('brokers = ["n1:1883"]\nport = 1883\n', "brokers and port are both set"),
    ('brokers = ["n1"]\n', "'n1' is not host:port"),
    ('brokers = ["n1:http"]\n', "'n1:http' is not host:port"),
    ('brokers = ["n1:0"]\n', "'n1:0' is not host:port"),
    ('brokers = [":1883"]\n', "':1883' is not host:port"),
    ('brokers = ["fd00::3:1883"]\n', "'fd00::3:1883': write an IPv6 address in brackets, [fd00::3]:1883"),
    ('brokers = ["n1:1883", "n1:1883"]\n', "n1:1883 listed twice"),
])
def test_a_wrong_broker_list_is_refused_naming_the_problem(tmp_path, keys, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MQTT + keys))
    assert message in str(info.value), str(info.value)
