"""The serial line protocols (docs/protocols.md#serial-lines): line splitter and the four parsers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples import serial_samples as s

from monitor.parameters import by_key
from monitor.readings import QualityFlag as Q
from monitor.seam import Frame, ParseError
from wire.lines import MAX_LINE, LineError, LineSplitter
from wire.registry import DIALECTS
from wire.serial.chairside_line import chairside_checksum, chairside_line, parse_chairside
from wire.serial.masimo import parse_masimo
from wire.serial.nellcor import parse_nellcor
from wire.serial.nonin import parse_nonin

PARSERS = {name: d.parse for name, d in DIALECTS.items() if d.transport == "serial"}

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def vt(body: str) -> str:
    """A Chairside line with a correct checksum."""
    return f"${body}*{chairside_checksum(body)}"


def assert_valid(frame: Frame | None) -> None:
    """What every parser result must be, whatever the input."""
    if frame is None:
        return
    assert isinstance(frame, Frame)
    for key, value in frame.values.items():
        assert by_key(key) is not None, key
        assert value is None or (type(value) is float and math.isfinite(value))
    assert isinstance(frame.flags, int) and frame.flags >= 0
    assert frame.seq is None or isinstance(frame.seq, int)
    assert frame.time is None or (type(frame.time) is float and math.isfinite(frame.time))


# --- every sample parses to what it says -----------------------------------------------------

MASIMO_NONE = {"spco": None, "spmet": None, "desat": None, "pi_delta": None}

SAMPLES = [
    # Masimo
    (parse_masimo, s.MASIMO_RADICAL7, Frame(
        {"spo2": 97.0, "pr": 72.0}, 0, "masimo-0000071234",
        extra={"device_local_time": "11/23/26 19:40:01", "exc": 0, "alarm": 0, "pi": 2.13,
               "pvi": None, **MASIMO_NONE})),
    (parse_masimo, s.MASIMO_RADICAL7_COLOR, Frame(
        {"spo2": 96.0, "pr": 74.0}, Q.LOW_SIGNAL_QUALITY, "masimo-0000071234",
        extra={"device_local_time": "11/23/26 19:40:02", "exc": 0xC00, "alarm": 0,
               "exc1": "00000000", "pi": 0.55, "spco": 1.0, "spmet": 0.8, "sphb": 13.1,
               "spoc": 19.0, "pvi": 14.0, "desat": None, "pi_delta": None})),
    (parse_masimo, s.MASIMO_RAD8, Frame(
        {"spo2": 98.0, "pr": 97.0}, 0, "masimo-0000056661",
        extra={"device_local_time": "02/22/26 22:47:45", "exc": 0x800, "alarm": 0, "pi": 3.6,
               **MASIMO_NONE})),
    (parse_masimo, s.MASIMO_RAD8_NO_SENSOR, Frame(
        {"spo2": None, "pr": None}, Q.NO_SENSOR, "masimo-0000093112",
        extra={"device_local_time": "03/19/26 13:37:12", "exc": 1, "alarm": 0,
               "desat": None, "pi_delta": None})),
    (parse_masimo, s.MASIMO_RAD97, Frame(
        {"spo2": 98.0, "pr": 101.0}, Q.SENSOR_OFF | Q.LOW_PERFUSION, "masimo-0000182948",
        extra={"device_local_time": "05/20/26 14:06:02", "exc": 0x824, "alarm": 0x10,
               "exc1": "00000000", "pi": None, "sphb": None, "spoc": None, "pvi": None,
               **MASIMO_NONE})),
    (parse_masimo, s.MASIMO_RADICAL7_SEARCH, Frame(
        {"spo2": 88.0, "pr": 131.0}, Q.PULSE_SEARCH | Q.INTERFERENCE, "masimo-0000071234",
        extra={"device_local_time": "11/23/26 19:41:10", "exc": 0x18, "alarm": 0x12, "pi": 0.41,
               "pvi": None, **MASIMO_NONE})),
    # Nonin
    (parse_nonin, s.NONIN_7500, Frame({"spo2": 97.0, "pr": 72.0})),
    (parse_nonin, s.NONIN_NO_DATA, Frame({"spo2": None, "pr": None})),
    (parse_nonin, s.NONIN_AVANT9600_FAST, Frame(
        {"spo2": 96.0, "pr": 71.0}, extra={"marker": "F", "event": False})),
    (parse_nonin, s.NONIN_EVENT_MARKER, Frame(
        {"spo2": 97.0, "pr": 73.0}, extra={"marker": "*", "event": True})),
    (parse_nonin, s.NONIN_9847_BREATH, Frame(
        {"spo2": 95.0, "pr": 68.0},
        extra={"device_local_time": "14:00:05", "marker": "B", "event": False})),
    # Nellcor
    (parse_nellcor, s.NELLCOR_N600X_HEADER, None),
    (parse_nellcor, s.NELLCOR_N595_HEADER, None),
    (parse_nellcor, s.NELLCOR_MODE_LINE, None),
    (parse_nellcor, s.NELLCOR_COLUMNS, None),
    (parse_nellcor, s.NELLCOR_COLUMNS_PADDED, None),
    (parse_nellcor, s.NELLCOR_ROW, Frame(
        {"spo2": 97.0, "pr": 72.0},
        extra={"device_local_time": "12-NOV-25 14:00:05", "pulse_amplitude": 50.0, "status": []})),
    (parse_nellcor, s.NELLCOR_ROW_MOTION, Frame(
        {"spo2": 91.0, "pr": 118.0}, Q.MOTION | Q.PULSE_SEARCH,
        extra={"device_local_time": "12-NOV-25 14:00:10", "pulse_amplitude": 12.0,
               "status": ["MO", "PS", "AS", "SL"]})),
    (parse_nellcor, s.NELLCOR_ROW_SENSOR_OFF, Frame(
        {"spo2": None, "pr": None}, Q.SENSOR_OFF,
        extra={"device_local_time": "12-NOV-25 14:00:15", "pulse_amplitude": None, "status": ["SO"]})),
    (parse_nellcor, s.NELLCOR_ROW_MIXED_CASE, Frame(
        {"spo2": 100.0, "pr": 139.0}, Q.MOTION,
        extra={"device_local_time": "02-Feb-26 13:26:32", "pulse_amplitude": 30.0, "status": ["MO"]})),
    (parse_nellcor, s.NELLCOR_ROW_LOW_BATTERY, Frame(
        {"spo2": 96.0, "pr": 75.0}, Q.LOW_BATTERY | Q.NO_SENSOR | Q.LOSS_OF_PULSE,
        extra={"device_local_time": "12-NOV-25 14:00:20", "pulse_amplitude": 48.0,
               "status": ["LB", "SD", "LP"]})),
    # Chairside
    (parse_chairside, s.CHAIRSIDE_CONTRACT, Frame(
        {"hr": 72.0, "spo2": 98.0, "pr": 71.0, "nibp_sys": 121.0, "nibp_dia": 79.0, "nibp_map": 93.0},
        Q.SENSOR_OFF | Q.LOW_PERFUSION, seq=1842)),
    (parse_chairside, s.CHAIRSIDE_NIBP_MODULE, Frame(
        {"nibp_sys": 118.0, "nibp_dia": 76.0, "nibp_map": 90.0}, 0, "nibp-bay2-04", 77,
        datetime(2026, 11, 23, 19, 40, 1, 250000, tzinfo=UTC).timestamp())),
    (parse_chairside, s.CHAIRSIDE_EMPTY_FIELDS, Frame(
        {"hr": 64.0, "spo2": None, "pr": None}, Q.NO_SENSOR, seq=12)),
    (parse_chairside, s.CHAIRSIDE_DIY_UNIX_TS, Frame(
        {"hr": 81.0, "spo2": 97.0}, 0, "diy-esp32-07", 5, 1795462801.5, extra={"ignored": ["fw"]})),
    (parse_chairside, s.CHAIRSIDE_EMPTY_NIBP, Frame({"hr": 70.0, "spo2": 99.0, "pr": 70.0}, seq=9)),
]


@pytest.mark.parametrize(("parse", "line", "expected"), SAMPLES,
                         ids=[f"{p.__name__}-{i}" for i, (p, _, _) in enumerate(SAMPLES)])
def test_sample_parses(parse, line, expected):
    frame = parse(line)
    assert frame == expected
    assert_valid(frame)
    # the same line as it comes off the wire, through the splitter, in odd-sized chunks
    data = (line + "\r\n").encode()
    splitter = LineSplitter()
    lines = [item for i in range(0, len(data), 7) for item in splitter.feed(data[i:i + 7])]
    assert lines == [line]


def test_every_sample_constant_is_tested():
    tested = {line for _, line, _ in SAMPLES}
    constants = {v for k, v in vars(s).items() if k.isupper() and isinstance(v, str)}
    assert constants == tested


def test_parsers_by_name():
    assert set(PARSERS) == {"masimo", "nonin", "nellcor", "chairside"}
    assert PARSERS["masimo"] is parse_masimo and PARSERS["nonin"] is parse_nonin
    assert PARSERS["nellcor"] is parse_nellcor and PARSERS["chairside"] is parse_chairside


def test_masimo_order_does_not_matter_and_unknown_keys_are_ignored():
    tokens = s.MASIMO_RADICAL7.split()
    head, rest = tokens[:2], tokens[2:]
    shuffled = " ".join(head + rest[::-1] + ["NEWKEY=42", "RESVD=---"])
    assert parse_masimo(shuffled) == parse_masimo(s.MASIMO_RADICAL7)


def test_masimo_one_of_spo2_or_bpm_is_enough():
    frame = parse_masimo("11/23/26 19:40:01 SN=---------- BPM=072 EXC=000000")
    assert frame.values == {"pr": 72.0}
    assert frame.device is None


def test_nellcor_header_lines_repeat_between_rows():
    lines = [s.NELLCOR_N600X_HEADER, s.NELLCOR_MODE_LINE, s.NELLCOR_COLUMNS, s.NELLCOR_ROW,
             s.NELLCOR_ROW_MOTION, s.NELLCOR_N600X_HEADER, s.NELLCOR_COLUMNS, s.NELLCOR_ROW_SENSOR_OFF]
    frames = [f for f in map(parse_nellcor, lines) if f is not None]
    assert [f.values["spo2"] for f in frames] == [97.0, 91.0, None]


def test_chairside_accepts_surrounding_blanks():
    assert parse_chairside(f"  {s.CHAIRSIDE_CONTRACT} \r") == parse_chairside(s.CHAIRSIDE_CONTRACT)


def test_chairside_ts_with_offset():
    frame = parse_chairside(vt("VT,ts=2026-11-23T20:40:01+01:00,hr=70"))
    assert frame.time == datetime(2026, 11, 23, 19, 40, 1, tzinfo=UTC).timestamp()


# --- every reason ---------------------------------------------------------------------------

ERRORS = [
    # Masimo
    (parse_masimo, "", "malformed"),
    (parse_masimo, "SPO2=097% BPM=072 EXC=000000", "malformed"),  # no date and time
    (parse_masimo, "11/23/26 SPO2=097% BPM=072", "malformed"),  # no time
    (parse_masimo, "11/23/26 19:40:01 SN=0000071234 PI=01.00% EXC=000000", "malformed"),  # no SPO2, BPM
    (parse_masimo, "11/23/26 19:40:01 SPO2=097% BPM 072", "malformed"),  # token without '='
    (parse_masimo, "11/23/26 19:40:01 SPO2=097% BPM=072 SPO2=098%", "malformed"),  # twice
    (parse_masimo, "11/23/26 19:40:01 SPO2=09x% BPM=072", "bad_value"),
    (parse_masimo, "11/23/26 19:40:01 SPO2=097% BPM=nan", "bad_value"),
    (parse_masimo, "11/23/26 19:40:01 SPO2=1e2% BPM=072", "bad_value"),
    (parse_masimo, "11/23/26 19:40:01 SPO2=\u0669\u0667% BPM=072", "bad_value"),  # Arabic-Indic digits
    (parse_masimo, "11/23/26 19:40:01 SPO2=097% BPM=", "bad_value"),
    (parse_masimo, "11/23/26 19:40:01 SPO2=097% BPM=072 EXC=00G000", "bad_value"),
    (parse_masimo, "11/23/26 19:40:01 SPO2=097% BPM=072 EXC=0x20", "bad_value"),
    (parse_masimo, "11/23/26 19:40:01 SN=0000/7123 SPO2=097% BPM=072", "bad_value"),
    # Nonin
    (parse_nonin, "SPO2=097", "malformed"),
    (parse_nonin, "HR=072 SPO2=097", "malformed"),
    (parse_nonin, "SPO2=097 HR=072 F more", "malformed"),
    (parse_nonin, "SPO2=097 HR=072 123", "malformed"),
    (parse_nonin, "NONIN 7500 V1.2 11/23/26", "malformed"),
    (parse_nonin, "", "malformed"),
    (parse_nonin, "SPO2=9O7 HR=072", "bad_value"),
    (parse_nonin, "SPO2=097 HR=", "bad_value"),
    (parse_nonin, "SPO2=097 HR=07-2", "bad_value"),
    # Nellcor
    (parse_nellcor, "hello world", "malformed"),
    (parse_nellcor, "12-NOV-25 14:00:05 97 72", "malformed"),  # too few fields
    (parse_nellcor, "12-NOV-25 97 72 50 SO", "malformed"),  # no time
    (parse_nellcor, "12-NOV-25 14:00:05 97 72 50 60", "malformed"),  # too many numbers
    (parse_nellcor, "12-NOV-25 14:00:05 9a 72 50", "bad_value"),
    (parse_nellcor, "12-NOV-25 14:00:05 97 72 inf", "bad_value"),
    (parse_nellcor, "12-NOV-25 14:00:05 97 72 50 XX", "unknown_status"),
    (parse_nellcor, "12-NOV-25 14:00:05 97 72 50 so", "unknown_status"),
    # Chairside
    (parse_chairside, "VT,hr=72*00", "malformed"),  # no '$'
    (parse_chairside, "$VT,hr=72", "checksum"),  # no checksum
    (parse_chairside, "$VT,hr=72*", "checksum"),
    (parse_chairside, "$VT,hr=72*0", "checksum"),
    (parse_chairside, "$VT,hr=72*000", "checksum"),
    (parse_chairside, vt("VT,hr=72")[:-2] + "00", "checksum"),  # wrong
    (parse_chairside, "$VT,spo2=98*4c", "checksum"),  # right, but lower case (it sums to 4C)
    (parse_chairside, vt("XX,hr=72"), "unknown_sentence"),
    (parse_chairside, vt("VT,hr"), "malformed"),
    (parse_chairside, vt("VT,=72"), "malformed"),
    (parse_chairside, vt("VT,hr=72,hr=73"), "malformed"),
    (parse_chairside, vt("VT,hr=abc"), "bad_value"),
    (parse_chairside, vt("VT,hr=nan"), "bad_value"),
    (parse_chairside, vt("VT,hr=1e3"), "bad_value"),
    (parse_chairside, vt("VT,hr=" + "9" * 400), "bad_value"),  # overflows to inf
    (parse_chairside, vt("VT,nibp=121/79"), "bad_value"),
    (parse_chairside, vt("VT,nibp=121//93"), "bad_value"),
    (parse_chairside, vt("VT,flags=SENSOR_OFF|FOO"), "bad_value"),
    (parse_chairside, vt("VT,flags=SENSOR_OFF|"), "bad_value"),
    (parse_chairside, vt("VT,seq=-1"), "bad_value"),
    (parse_chairside, vt("VT,seq=1.5"), "bad_value"),
    (parse_chairside, vt(f"VT,seq={2**63}"), "bad_value"),
    (parse_chairside, vt("VT,ts=2026-11-23T19:40:01"), "bad_value"),  # no offset
    (parse_chairside, vt("VT,ts=2026-13-45T19:40:01Z"), "bad_value"),
    (parse_chairside, vt("VT,ts=yesterday"), "bad_value"),
    (parse_chairside, vt("VT,dev=bed 4"), "bad_value"),
    (parse_chairside, vt("VT,dev=" + "d" * 65), "bad_value"),
]


@pytest.mark.parametrize(("parse", "line", "reason"), ERRORS,
                         ids=[f"{p.__name__}-{r}-{i}" for i, (p, _, r) in enumerate(ERRORS)])
def test_parse_error_reason(parse, line, reason):
    with pytest.raises(ParseError) as info:
        parse(line)
    assert info.value.reason == reason
    assert str(info.value)  # the message says what is wrong


def test_error_message_names_the_problem_and_quotes_the_line():
    with pytest.raises(ParseError, match=r"BPM is not a number: 'x72'.*11/23/26"):
        parse_masimo("11/23/26 19:40:01 SPO2=097% BPM=x72")
    with pytest.raises(ParseError) as info:
        parse_nonin("x" * 500)
    assert len(str(info.value)) < 200  # quotes a short part only


# --- LineSplitter ---------------------------------------------------------------------------

def test_splitter_lf_and_crlf():
    assert LineSplitter().feed(b"a=1\nb=2\r\nc=3\r\n") == ["a=1", "b=2", "c=3"]


def test_splitter_keeps_partial_lines_across_feeds_even_inside_crlf():
    splitter = LineSplitter()
    assert splitter.feed(b"SPO2=097 HR") == []
    assert splitter.feed(b"=072\r") == []
    assert splitter.feed(b"\nSPO2=0") == ["SPO2=097 HR=072"]
    assert splitter.feed(b"98 HR=071\r\n") == ["SPO2=098 HR=071"]
    assert splitter.buffered == 0


def test_splitter_byte_by_byte_is_the_same_as_all_at_once():
    data = "\r\n".join([s.MASIMO_RAD8, s.NELLCOR_COLUMNS, "", s.CHAIRSIDE_CONTRACT, ""]).encode()
    splitter = LineSplitter()
    one_by_one = [item for i in range(len(data)) for item in splitter.feed(data[i:i + 1])]
    assert one_by_one == LineSplitter().feed(data) == [s.MASIMO_RAD8, s.NELLCOR_COLUMNS,
                                                        s.CHAIRSIDE_CONTRACT]


def test_splitter_skips_empty_and_blank_lines():
    assert LineSplitter().feed(b"\n\r\n \t\r\n\r\r\nx\n\n") == ["x"]


def test_splitter_passes_garbage_text_on_for_the_parser_to_refuse():
    lines = LineSplitter().feed(b"\x00\x07#@!garbage\x1b[2J\r\nSPO2=097 HR=072\r\n")
    assert lines == ["\x00\x07#@!garbage\x1b[2J", "SPO2=097 HR=072"]
    for parse in PARSERS.values():
        with pytest.raises(ParseError):
            parse(lines[0])


def test_splitter_reports_non_utf8_and_goes_on():
    lines = LineSplitter().feed(b"SPO2=\xff97 HR=072\r\nTEMP=37\xb0C\nSPO2=097 HR=072\n")
    assert [type(x) for x in lines] == [LineError, LineError, str]
    assert [x.reason for x in lines[:2]] == ["not_utf8", "not_utf8"]
    assert lines[2] == "SPO2=097 HR=072"
    assert "SPO2=" in lines[0].detail


def test_splitter_takes_utf8_text():
    assert LineSplitter().feed("dev=Stuhl-3 °C\n".encode()) == ["dev=Stuhl-3 °C"]


def test_splitter_line_of_max_length_is_taken_one_more_is_dropped():
    longest = b"x" * MAX_LINE
    assert LineSplitter().feed(longest + b"\r\n") == [longest.decode()]
    assert LineSplitter().feed(longest + b"\n") == [longest.decode()]
    splitter = LineSplitter()  # the CR of CR LF arriving alone does not count
    assert splitter.feed(longest + b"\r") == []
    assert splitter.feed(b"\n") == [longest.decode()]
    (error,) = LineSplitter().feed(longest + b"y\r\n")
    assert isinstance(error, LineError) and error.reason == "too_long"
    splitter = LineSplitter()  # one byte too many, only known when the LF comes
    assert splitter.feed(longest + b"y") == []
    out = splitter.feed(b"\nok\n")
    assert isinstance(out[0], LineError) and out[0].reason == "too_long"
    assert out[1:] == ["ok"]


@pytest.mark.parametrize("chunk", [1, 100, 513, 4096])
def test_splitter_drops_an_over_long_line_once_then_resyncs_at_the_next_lf(chunk):
    data = b"A=1\n" + b"x" * 2000 + b"\r\n" + b"SPO2=097 HR=072\r\n"
    splitter = LineSplitter()
    out = [item for i in range(0, len(data), chunk) for item in splitter.feed(data[i:i + chunk])]
    assert out[0] == "A=1"
    assert isinstance(out[1], LineError) and out[1].reason == "too_long"
    assert "xxxx" in out[1].detail
    assert out[2:] == ["SPO2=097 HR=072"]


def test_splitter_memory_stays_bounded_on_a_stream_without_lf():
    splitter = LineSplitter()
    errors = []
    block = bytes(range(256)).replace(b"\n", b"") * 16
    for _ in range(2000):  # about 8 MB
        errors += splitter.feed(block)
        assert splitter.buffered <= MAX_LINE + 1
    assert [e.reason for e in errors] == ["too_long"]  # reported once, not once per feed
    assert splitter.feed(b"tail\nSPO2=097 HR=072\n") == ["SPO2=097 HR=072"]


def test_splitter_reset_forgets_the_partial_line():
    splitter = LineSplitter()
    splitter.feed(b"half a li")
    splitter.reset()
    assert splitter.feed(b"ne\nwhole\n") == ["ne", "whole"]
    splitter.feed(b"y" * 600)
    splitter.reset()  # also leaves the discarding state
    assert splitter.feed(b"next\n") == ["next"]


# --- nothing but ParseError, whatever comes down the wire -----------------------------------

_WIRE_PIECES = [line.encode() for line in vars(s).values() if isinstance(line, str)] + [
    b"\r", b"\n", b"\r\n", b" ", b"=", b"-", b"---", b"%", b"*", b"$", b",", b"/", b"|", b"\xff",
    b"\xc3", b"\x00", b"x" * 300, b"SPO2=", b"HR=", b"$VT,", b"*4C", b"12-NOV-25 ", b"14:00:05 ",
]
wire = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(_WIRE_PIECES)), max_size=25)
chunk_sizes = st.lists(st.integers(1, 64), min_size=1, max_size=8)


def _parse_all(line: str) -> None:
    for parse in PARSERS.values():
        try:
            frame = parse(line)
        except ParseError as exc:
            assert exc.reason and isinstance(exc.reason, str)
        else:
            assert_valid(frame)


@FAST
@given(pieces=wire, sizes=chunk_sizes)
def test_any_bytes_in_any_chunks_give_lines_and_parse_errors_only(pieces, sizes):
    data = b"".join(pieces)
    splitter = LineSplitter()
    out: list[str | LineError] = []
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out += splitter.feed(data[i:i + n])
        assert splitter.buffered <= MAX_LINE + 1
        i, k = i + n, k + 1
    assert out == LineSplitter().feed(data)  # chunking never changes the result
    for item in out:
        if isinstance(item, LineError):
            assert item.reason in ("too_long", "not_utf8")
            continue
        assert "\n" not in item and item.strip() and len(item.encode()) <= MAX_LINE
        _parse_all(item)


_SAMPLE_LINES = [v for v in vars(s).values() if isinstance(v, str)]


@FAST
@given(line=st.sampled_from(_SAMPLE_LINES),
       edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 2),
                                st.sampled_from(list(" =-%*$,/|.:+0123456789AFabfSOPHRVT\u0669ſ"))),
                      max_size=4))
def test_damaged_sample_lines_give_frames_or_parse_errors_only(line, edits):
    for pos, op, char in edits:
        pos %= len(line) + 1
        if op == 0:
            line = line[:pos] + char + line[pos:]  # insert
        elif op == 1:
            line = line[:pos] + line[pos + 1:]  # delete
        else:
            line = line[:pos] + char + line[pos + 1:]  # replace
    _parse_all(line)


@FAST
@given(st.text(max_size=120))
def test_any_text_gives_frames_or_parse_errors_only(text):
    _parse_all(text)


# --- chairside_line ---------------------------------------------------------------------------

# any float in a range a device could send, tiny magnitudes aside (1e-300 written out
# positionally is 300 characters: a few of those would not fit in a 512-byte line)
finite = st.floats(-1e6, 1e6).filter(lambda v: v == 0 or abs(v) > 1e-6)
one_value = st.one_of(st.none(), finite, st.integers(0, 400))
flag_names_st = st.lists(st.sampled_from([f.name for f in Q if f.name and f]), max_size=4)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
timestamps = st.one_of(
    st.none(),
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets),
)


@st.composite
def vt_values(draw):
    keys = draw(st.lists(st.sampled_from(["hr", "spo2", "pr"]), unique=True))
    values = {k: draw(one_value) for k in keys}
    if draw(st.booleans()):
        values |= {k: draw(st.one_of(finite, st.integers(0, 300)))
                   for k in ("nibp_sys", "nibp_dia", "nibp_map")}
    return values


@FAST
@given(values=vt_values(), flags=flag_names_st, seq=st.none() | st.integers(0, 2**63 - 1),
       ts=timestamps, device=st.none() | st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True))
def test_chairside_line_round_trip(values, flags, seq, ts, device):
    line = chairside_line(values, seq=seq, flags=flags, ts=ts, device=device)
    assert line.startswith("$VT") and "\n" not in line
    frame = parse_chairside(line)
    assert frame.values == {k: None if v is None else float(v) for k, v in values.items()}
    mask = 0
    for name in flags:
        mask |= Q[name]
    assert frame.flags == mask
    assert frame.seq == seq and frame.device == device
    if ts is None:
        assert frame.time is None
    elif isinstance(ts, datetime):
        assert frame.time == ts.timestamp()
    else:
        assert frame.time == ts
    assert chairside_line(values, seq=seq, flags=mask, ts=ts, device=device) == line  # mask form


@FAST
@given(values=vt_values(), seq=st.integers(0, 10**6), data=st.data())
def test_chairside_any_changed_byte_or_checksum_is_rejected(values, seq, data):
    line = chairside_line(values, seq=seq)
    body_end = line.rindex("*")
    pos = data.draw(st.integers(1, body_end - 1), label="pos")
    char = data.draw(st.characters(min_codepoint=0x20, max_codepoint=0x7E)
                     .filter(lambda c: c != line[pos]), label="char")
    damaged = line[:pos] + char + line[pos + 1:]
    with pytest.raises(ParseError) as info:
        parse_chairside(damaged)
    assert info.value.reason == "checksum"
    other = data.draw(st.integers(0, 255).filter(lambda n: f"{n:02X}" != line[-2:]), label="checksum")
    with pytest.raises(ParseError) as info:
        parse_chairside(f"{line[:-2]}{other:02X}")
    assert info.value.reason == "checksum"


def test_chairside_line_examples():
    assert chairside_line({"hr": 72, "spo2": 98, "pr": 71, "nibp_sys": 121, "nibp_dia": 79,
                           "nibp_map": 93}, seq=1842, flags=["SENSOR_OFF", "LOW_PERFUSION"]) \
        == s.CHAIRSIDE_CONTRACT
    assert chairside_line({"hr": None, "spo2": 97.5}) == vt("VT,hr=,spo2=97.5")
    assert chairside_line({"hr": 1e-7}) == vt("VT,hr=0.0000001")  # never an exponent
    assert chairside_line({"nibp_sys": None, "nibp_dia": None, "nibp_map": None}) == vt("VT")


@pytest.mark.parametrize(("args", "kwargs"), [
    ({"temp": 37.0}, {}),  # no field for it
    ({"nibp_sys": 120, "nibp_dia": 80}, {}),  # NIBP goes in threes
    ({"hr": math.nan}, {}),
    ({"hr": math.inf}, {}),
    ({"hr": True}, {}),
    ({"hr": "72"}, {}),
    ({}, {"flags": ["FOO"]}),
    ({}, {"flags": 1 << 30}),
    ({}, {"seq": -1}),
    ({}, {"seq": 2**63}),
    ({}, {"device": "bed 4"}),
    ({}, {"ts": datetime(2026, 1, 1)}),  # naive
    ({}, {"ts": "2026-01-01T00:00:00"}),  # no offset
    ({}, {"ts": math.nan}),
    ({"hr": 5e-324, "spo2": 5e-324}, {}),  # fine as numbers, but the line is over 512 bytes
])
def test_chairside_line_refuses_what_the_parser_would(args, kwargs):
    with pytest.raises(ValueError):
        chairside_line(args, **kwargs)
