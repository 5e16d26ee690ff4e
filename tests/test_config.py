"""Configuration: the shipped example is valid; each kind of error names file, key, problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import ConfigError, load_config

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
     "bay.toml: limit_profiles.p.rules: rule 1: give exactly one of low, high"),
    (GOOD_CHAIRS + "[limit_profiles.p]\nrules = [{parameter = 'nibp_sys', low = 90, delay_s = 5}]\n",
     "rule 1: nibp_sys is intermittent: it takes no annunciation delay"),
    (GOOD_CHAIRS + "[limit_profiles.p]\nrules = [{parameter = 'spo2', low = 90, priority = 'medium'},"
     " {parameter = 'spo2', low = 88, priority = 'medium'}]\n",
     "more than one rule for spo2_low_limit_medium"),
    (GOOD_CHAIRS + "[protocols.x]\ndrug = 'y'\n", "bay.toml: protocols.x.label: required key is missing"),
    (GOOD_CHAIRS + "[protocols.x]\nlabel = 'x'\ndrug = 'y'\nlimits = [{parameter = 'hr', high = 'fast'}]\n",
     "bay.toml: protocols.x.limits: rule 1: could not convert string to float: 'fast'"),
])
def test_each_kind_of_error_names_file_key_and_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value).replace(str(tmp_path) + "/", "")


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_check_config_command(tmp_path, capsys):
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert "OK: bay 'bay1', 2 chairs" in capsys.readouterr().out
    bad = write(tmp_path, '[[chairs]]\nid = "a b"\n')
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: chairs[0].id: must be 1-32 letters" in err
