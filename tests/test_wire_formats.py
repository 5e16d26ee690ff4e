"""The wire formats: parse(format(x)) == x for every dialect of the registry, over generated
frames within each dialect's range and precision; the registry is the one list the
configuration and the simulators read; the HL7 basics (escaping, MSH, DTM) both ways."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import wire.serial
from monitor.config import SERIAL_PARAMETERS, SerialSource
from monitor.parameters import PARAMETERS
from monitor.readings import QualityFlag as Q
from monitor.readings import flag_names
from monitor.seam import Frame
from wire.hl7.pcd01 import oru_r01, parse_pcd01
from wire.hl7.v2 import DEFAULT_ENCODING, Fields, MessageHeader, escaper, format_dtm, parse_dtm, read_header
from wire.mqtt_json import FLAGS as MQTT_FLAGS
from wire.registry import DIALECTS, SERIAL_PROTOCOLS, lookup, names
from wire.serial.masimo import EXC_FLAGS
from wire.serial.nellcor import STATUS_FLAGS

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies: frames in the canonical form each parser returns ---------------------------

whole = st.integers(0, 999).map(float)
maybe_whole = st.none() | whole
hundredths = st.integers(-9999, 9999).map(lambda n: n / 100)
#: a time at millisecond precision, 2000-2100 (what RFC 3339 with milliseconds carries)
millis = st.integers(946_684_800_000, 4_102_444_800_000).map(lambda n: n / 1000)
seconds = st.integers(946_684_800, 4_102_444_800).map(float)


def _clock(t: float, pattern: str) -> str:
    return datetime.fromtimestamp(t, UTC).strftime(pattern)


@st.composite
def masimo_frames(draw: st.DrawFn) -> Frame:
    values = draw(st.dictionaries(st.sampled_from(["spo2", "pr"]), maybe_whole, min_size=1))
    exc = draw(st.integers(0, 0xFFFFFF))
    flags = 0
    for bit, flag in EXC_FLAGS.items():
        if exc & bit:
            flags |= flag
    extra = {"device_local_time": _clock(draw(seconds), "%m/%d/%y %H:%M:%S"), "exc": exc}
    for key in draw(st.sets(st.sampled_from(["pi", "spco", "spmet", "sphb", "spoc", "pvi", "desat",
                                             "pi_delta"]))):
        extra[key] = draw(st.none() | hundredths)
    if draw(st.booleans()):
        extra["alarm"] = draw(st.none() | st.integers(0, 0xFFFF))
    if draw(st.booleans()):
        extra["exc1"] = draw(st.from_regex(r"[0-9A-F]{8}", fullmatch=True))
    sn = draw(st.none() | st.from_regex(r"[A-Za-z0-9]{1,32}", fullmatch=True))
    return Frame(values, int(flags), None if sn is None else f"masimo-{sn}", extra=extra)


@st.composite
def nonin_frames(draw: st.DrawFn) -> Frame:
    extra: dict[str, object] = {}
    if draw(st.booleans()):
        extra["device_local_time"] = _clock(draw(seconds), "%H:%M:%S")
    marker = draw(st.none() | st.from_regex(r"[*A-Za-z]{1,3}", fullmatch=True))
    if marker:
        extra.update(marker=marker, event="*" in marker)
    return Frame({"spo2": draw(maybe_whole), "pr": draw(maybe_whole)}, extra=extra)


@st.composite
def nellcor_frames(draw: st.DrawFn) -> Frame:
    codes = draw(st.lists(st.sampled_from(sorted(STATUS_FLAGS)), max_size=5))
    flags = 0
    for code in codes:
        flags |= STATUS_FLAGS[code]
    extra = {"device_local_time": _clock(draw(seconds), "%d-%b-%y %H:%M:%S").upper(),
             "pulse_amplitude": draw(maybe_whole), "status": codes}
    return Frame({"spo2": draw(maybe_whole), "pr": draw(maybe_whole)}, int(flags), extra=extra)


number = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
short_number = st.integers(-10**7, 10**7).map(lambda n: n / 100)  # a $VT line is at most 512 bytes
all_flags = st.integers(0, int(sum(Q)))


@st.composite
def chairside_frames(draw: st.DrawFn) -> Frame:
    values = draw(st.dictionaries(st.sampled_from(["hr", "spo2", "pr"]), st.none() | short_number))
    if draw(st.booleans()):
        values.update(zip(["nibp_sys", "nibp_dia", "nibp_map"],
                          draw(st.tuples(short_number, short_number, short_number)), strict=True))
    return Frame(values, draw(all_flags), draw(st.none() | st.from_regex(r"[A-Za-z0-9_.:-]{1,64}",
                                                                        fullmatch=True)),
                 draw(st.none() | st.integers(0, 2**63 - 1)), draw(st.none() | number.map(abs)))


@st.composite
def mqtt_frames(draw: st.DrawFn) -> Frame:
    keys = ["hr", "spo2", "pr", "nibp_sys", "nibp_dia", "nibp_map"]
    values = draw(st.dictionaries(st.sampled_from(keys), st.none() | number))
    mask = 0
    for name in draw(st.sets(st.sampled_from(MQTT_FLAGS))):
        mask |= Q[name]
    return Frame(values, mask, draw(st.text(min_size=1, max_size=64)), draw(st.integers(0, 2**63 - 1)),
                 draw(millis))


FRAMES = {"masimo": masimo_frames(), "nonin": nonin_frames(), "nellcor": nellcor_frames(),
          "chairside": chairside_frames(), "mqtt-json": mqtt_frames()}


def test_every_dialect_has_a_round_trip_property():
    assert set(FRAMES) | {"hl7"} == set(DIALECTS)


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_parse_of_format_gives_the_frame_back(name):
    dialect = DIALECTS[name]

    @FAST
    @given(FRAMES[name])
    def check(frame: Frame) -> None:
        try:
            line = dialect.format(frame)
        except ValueError as exc:  # more than a line may hold: refused, never cut
            assume("more than" not in str(exc))
            raise
        assert dialect.parse(line) == frame

    check()


# --- HL7 PCD-01: the message's content back ------------------------------------------------

hl7_value = st.integers(-99999, 99999).map(lambda n: n / 100)
hl7_id = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _.|^&~\\-]{0,30}", fullmatch=True)


@FAST
@given(values=st.dictionaries(st.sampled_from([p.key for p in PARAMETERS]), st.none() | hl7_value),
       demo=st.booleans(), t=seconds, control_id=hl7_id, device=hl7_id,
       bed=st.from_regex(r"[A-Z0-9]{1,8}\^\^[A-Za-z0-9]{1,8}", fullmatch=True))
def test_pcd01_parse_of_format_gives_values_times_device_bed_and_control_id_back(
        values, demo, t, control_id, device, bed):
    flags = int(Q.DEMO) if demo else 0
    message = parse_pcd01(oru_r01(values, flags, t, control_id=control_id, bed=bed, device=device))
    assert Fields().text(message.control_id) == control_id  # control_id is kept as sent (escaped)
    assert message.bed == bed and not message.rejections
    got = {o.parameter: o.value for o in message.observations}
    assert got == {k: v for k, v in values.items() if v is not None}
    assert {o.time for o in message.observations} <= {t}
    assert all(Fields().text(o.equipment.split("^")[0]) == device for o in message.observations)
    assert all(o.flags == flags for o in message.observations)


# --- HL7 v2 basics -------------------------------------------------------------------------

separators = st.sampled_from([("|", DEFAULT_ENCODING), ("#", "$%*@"), ("|", "^~\\&#")])


@FAST
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")),
       seps=separators)
def test_unescape_of_escape_is_the_text(text, seps):
    field_sep, encoding = seps
    f = Fields(field_sep, encoding)
    escaped = escaper(field_sep, encoding)(text)
    assert not set(escaped) & set(f.seps)  # no separator left to split on
    assert f.text(escaped) == text


@FAST
@given(t=millis)
def test_dtm_both_ways(t):
    assert parse_dtm(format_dtm(t, millis=True)) == t
    assert parse_dtm(format_dtm(t)) == float(int(t))


@FAST
@given(fields=st.lists(st.from_regex(r"[A-Za-z0-9 ._^-]{0,12}", fullmatch=True), min_size=13, max_size=13))
def test_msh_written_and_read_back(fields):
    header = MessageHeader("|", DEFAULT_ENCODING, *fields)
    assert read_header(header.segment() + "\rPID|1") == header


# --- the registry ----------------------------------------------------------------------------


def test_every_serial_module_is_registered_and_the_config_and_simulators_read_the_registry():
    modules = {m.name for m in pkgutil.iter_modules(wire.serial.__path__)} - {"common"}
    declared = {importlib.import_module(f"wire.serial.{m}").DIALECT.name for m in modules}
    assert declared == set(SERIAL_PROTOCOLS) == set(SERIAL_PARAMETERS)
    assert {name: DIALECTS[name].parameters for name in SERIAL_PROTOCOLS} == SERIAL_PARAMETERS
    from simulators.scenario import ChairSpec

    for name in SERIAL_PROTOCOLS:  # every registered dialect is a valid config and scenario value
        SerialSource(kind="serial", name="s", chair="c1", port="/dev/null", protocol=name)
        ChairSpec(id="c1", transport="serial", protocol=name)
    with pytest.raises(ValueError, match="masimo"):
        SerialSource(kind="serial", name="s", chair="c1", port="/dev/null", protocol="philips")


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialects_samples_parse_to_readings_and_its_header_to_none(name):
    dialect = DIALECTS[name]
    assert dialect.samples
    for sample in dialect.samples:
        parsed = dialect.parse(sample)
        readings = parsed.observations if dialect.transport == "hl7" else parsed.values
        assert readings
    assert all(dialect.parse(line) is None for line in dialect.header)


def test_lookup_by_name_and_alias():
    assert lookup("chairside-line") is lookup("chairside") is DIALECTS["chairside"]
    assert lookup("mqtt") is DIALECTS["mqtt-json"]
    assert {"masimo", "nonin", "nellcor", "chairside-line", "hl7", "mqtt-json"} <= set(names())
    with pytest.raises(KeyError, match="known: chairside"):
        lookup("philips")


def test_formats_drop_the_flags_a_dialect_has_no_code_for():
    frame = Frame({"spo2": 97.0, "pr": 70.0}, int(Q.SENSOR_OFF | Q.MOTION | Q.DEMO), time=0.0)
    assert DIALECTS["masimo"].parse(DIALECTS["masimo"].format(frame)).flags == Q.SENSOR_OFF
    assert DIALECTS["nellcor"].parse(DIALECTS["nellcor"].format(frame)).flags == Q.SENSOR_OFF | Q.MOTION
    mqtt = Frame(frame.values, frame.flags, "d", 1, 0.0)
    assert flag_names(DIALECTS["mqtt-json"].parse(DIALECTS["mqtt-json"].format(mqtt)).flags) == ["SENSOR_OFF"]


@pytest.mark.parametrize(("name", "frame", "message"), [
    ("masimo", Frame({"spo2": 1000.0}, time=0.0), "does not fit"),
    ("masimo", Frame({"hr": 70.0}, time=0.0), "spo2 or pr"),
    ("masimo", Frame({"spo2": 97.0}, device="rad97", time=0.0), "masimo-<SN>"),
    ("masimo", Frame({"spo2": 97.0}), "device_local_time"),
    ("nonin", Frame({"nibp_sys": 120.0}), "no field"),
    ("nellcor", Frame({"spo2": 97.0}, extra={"status": ["ZZ"]}, time=0.0), "unknown status"),
    ("mqtt-json", Frame({"hr": 70.0}, device="d", seq=1), "time"),
    ("mqtt-json", Frame({"temp": 36.0}, device="d", seq=1, time=0.0), "no payload key"),
    ("chairside", Frame({"nibp_sys": 120.0}), "go together"),
])
def test_a_format_refuses_what_its_dialect_cannot_carry(name, frame, message):
    with pytest.raises(ValueError, match=message):
        DIALECTS[name].format(frame)


def test_every_wire_module_exports_what_its_all_names():
    import wire

    modules = [m.name for m in pkgutil.walk_packages(wire.__path__, "wire.")]
    assert {"wire.registry", "wire.hl7.v2", "wire.hl7.ack", "wire.serial.masimo"} <= set(modules)
    for name in modules:
        module = importlib.import_module(name)
        for export in getattr(module, "__all__", ()):
            assert hasattr(module, export), f"{name}.__all__ names missing {export}"
