"""HL7 v2 ORU^R01 (IHE PCD-01) over MLLP: the parser, the framing, and the listener on real
TCP sockets (127.0.0.1, port 0) in front of a real core on a real SQLite file."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hl7
import pytest
from conftest import T0, Harness, harness_on, scaled, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import hl7_samples as S

from devices.hl7_listener import Hl7Listener
from monitor.config import Hl7Source
from monitor.readings import QualityFlag
from monitor.seam import ParseError, SourceState
from simulators.mllp_client import MllpClient
from wire.hl7.ack import AckError, build_ack, read_ack
from wire.hl7.mllp import MllpDecoder, MllpProblem, frame
from wire.hl7.pcd01 import Hl7ParseError, parse_pcd01
from wire.hl7.v2 import id_candidates, parse_dtm, read_header

HOST = "127.0.0.1"
BEDS = {S.PHILIPS_BED: "c1", S.NIHON_KOHDEN_BED: "c4", "INF^^Bed01": "c1"}
DEVICES = {S.MINDRAY_DEVICE: "c2", S.GE_EQUIPMENT: "c3",
           **{f"DEV{i:02d}": f"c{i % 4 + 1}" for i in range(20)}}
SAMPLES = {  # name: (message, chair, expected {parameter: (value, time)}, device id stored)
    "philips": (S.PHILIPS_INTELLIVUE, "c1", S.PHILIPS_EXPECTED, "0009FBFFFF9B42B3"),
    "mindray": (S.MINDRAY_BENEVISION, "c2", S.MINDRAY_EXPECTED, S.MINDRAY_DEVICE),
    "ge": (S.GE_CARESCAPE, "c3", S.GE_EXPECTED, S.GE_EQUIPMENT),
    "nihon_kohden": (S.NIHON_KOHDEN, "c4", S.NIHON_KOHDEN_EXPECTED, "NK_GATEWAY"),
}
SPO2 = "150456^MDC_PULS_OXIM_SAT_O2^MDC"
HR = "147842^MDC_ECG_HEART_RATE^MDC"
PCT = "262688^MDC_DIM_PERCENT^MDC"
BPM = "264864^MDC_DIM_BEAT_PER_MIN^MDC"
MMHG = "266016^MDC_DIM_MMHG^MDC"


def oru(*obx: str, control: str = "MSG1", msh_time: str = "20270115075959+0000", obr_time: str = "",
        bed: str = "INF^^Bed01", app: str = "TESTGW^0011223344556677^EUI-64", sep: str = "\r") -> str:
    """A minimal ORU^R01; each ``obx`` is the part after ``OBX|<n>|``."""
    segments = [
        f"MSH|^~\\&|{app}|SITE|CHAIRSIDE|BAY|{msh_time}||ORU^R01^ORU_R01|{control}|P|2.6",
        f"PV1||O|{bed}",
        f"OBR|1|{control}||182777000^monitoring of patient^SCT|||{obr_time}",
        *(f"OBX|{i}|{body}" for i, body in enumerate(obx, 1)),
    ]
    return sep.join(segments) + sep


def nm(code: str, value: str, unit: str, *, status: str = "F", when: str = "", flags: str = "",
       equipment: str = "", sub_id: str = "") -> str:
    """An OBX body (from OBX-2): NM value with OBX-4, -5, -6, -8, -11, -14, -18."""
    return f"NM|{code}|{sub_id}|{value}|{unit}||{flags}|||{status}|||{when}||||{equipment}"



# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def bay(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = harness_on(request, tmp_path, chairs=4)
    yield h
    h.monitor.close()


@pytest.fixture
def start_listener(bay: Harness) -> Iterator[Callable[..., Hl7Listener]]:
    started: list[Hl7Listener] = []

    def start(max_connections: int = 64, **options: Any) -> Hl7Listener:
        kw = {"beds": BEDS, "devices": DEVICES} | options
        listener = Hl7Listener(Hl7Source(kind="hl7", name="gw", host=HOST, port=0, **kw), bay.monitor,
                               max_connections=max_connections)
        listener.start()
        started.append(listener)
        assert listener.state is SourceState.CONNECTED and listener.port
        return listener

    yield start
    for listener in started:
        listener.stop()


@pytest.fixture
def listener(start_listener: Callable[..., Hl7Listener]) -> Hl7Listener:
    return start_listener()


def client(listener: Hl7Listener, timeout: float = 5.0) -> MllpClient:
    assert listener.port is not None
    return MllpClient(HOST, listener.port, timeout)


def stored(bay: Harness, chair: str) -> dict[str, tuple[float | None, float, str, int]]:
    assert bay.monitor.store is not None
    return {r.parameter: (r.value, r.device_time, r.device, r.flags)
            for r in bay.monitor.store.iter_readings(chair, 0, None)}


# --- parser: vendor samples ----------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_vendor_sample_parses(name: str) -> None:
    message, _, expected, _ = SAMPLES[name]
    msg = parse_pcd01(message)
    assert msg.message_type == "ORU^R01"
    assert {o.parameter: (o.value, o.time) for o in msg.observations} == expected
    assert msg.rejections == ()


def test_sample_identities() -> None:
    philips = parse_pcd01(S.PHILIPS_INTELLIVUE)
    assert philips.control_id == "PIB0115025957102001"
    assert philips.bed == S.PHILIPS_BED
    assert philips.sending_application == "IntelliBridge^0009FBFFFF9B42B3^EUI-64"
    # the MDS row's OBX-18 is inherited by every metric below it
    assert {o.equipment for o in philips.observations} == {"0009FBFFFF9B42B3^^0009FBFFFF9B42B3^EUI-64"}
    assert philips.unknown_codes == 1  # respiration rate
    assert parse_pcd01(S.MINDRAY_BENEVISION).bed == ""  # "^^^"
    assert {o.equipment for o in parse_pcd01(S.GE_CARESCAPE).observations} == {
        "080019FFFE3A9B10^CH12_GE"}
    nk = parse_pcd01(S.NIHON_KOHDEN)
    assert nk.not_measured == 1  # PR with status X
    assert all(o.code is None for o in nk.observations)  # reference ids only


def test_both_nibp_code_families() -> None:
    msg = parse_pcd01(oru(
        nm("150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "120", MMHG),
        nm("150022^MDC_PRESS_BLD_NONINV_DIA^MDC", "80", MMHG),
        nm("150023^MDC_PRESS_BLD_NONINV_MEAN^MDC", "93", MMHG),
        nm("150301^MDC_PRESS_CUFF_SYS^MDC", "121", "mm[Hg]^mm[Hg]^UCUM"),
        nm("150302^MDC_PRESS_CUFF_DIA^MDC", "81", "mmHg"),
        nm("150303^MDC_PRESS_CUFF_MEAN^MDC", "94", "266016"),
    ))
    assert [(o.parameter, o.value, o.code) for o in msg.observations] == [
        ("nibp_sys", 120, 150021), ("nibp_dia", 80, 150022), ("nibp_map", 93, 150023),
        ("nibp_sys", 121, 150301), ("nibp_dia", 81, 150302), ("nibp_map", 94, 150303)]


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
@pytest.mark.parametrize("name", SAMPLES)
def test_segment_separators(name: str, sep: str) -> None:
    message = SAMPLES[name][0]
    assert parse_pcd01(message.replace("\r", sep)) == parse_pcd01(message)


# --- parser: fields ------------------------------------------------------------------------


def test_time_precedence_obx14_then_obr7_then_msh7() -> None:
    obx14 = nm(SPO2, "97", PCT, when="20270115075950+0000")
    plain = nm(SPO2, "96", PCT)
    both = parse_pcd01(oru(obx14, plain, msh_time="20270115075959+0000", obr_time="20270115075955+0000"))
    assert [o.time for o in both.observations] == [T0 - 10, T0 - 5]
    no_obr = parse_pcd01(oru(obx14, plain, msh_time="20270115075959+0000"))
    assert [o.time for o in no_obr.observations] == [T0 - 10, T0 - 1]


@pytest.mark.parametrize(("text", "expected"), [
    ("20270115080000", T0),  # no offset: UTC
    ("20270115080000+0000", T0),
    ("20270115073000-0030", T0),  # python-hl7's parse_datetime gets this sign wrong
    ("20270115083000+0030", T0),
    ("20270115030000-0500", T0),
    ("20270115080001.25", T0 + 1.25),
    ("20270115080001.2500+0000", T0 + 1.25),
    ("202701150800", T0),  # minute precision
])
def test_parse_dtm(text: str, expected: float) -> None:
    assert parse_dtm(text) == expected


@pytest.mark.parametrize("text", ["", "2027011508", "20271315080000", "20270115080000+2500",
                                  "20270115080000Z", "2027-01-15T08:00:00", "20270115080000.12345"])
def test_parse_dtm_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_dtm(text)


def test_bad_time_rejects_the_observation() -> None:
    msg = parse_pcd01(oru(nm(SPO2, "97", PCT, when="yesterday"), nm(HR, "70", BPM)))
    assert [o.parameter for o in msg.observations] == ["hr"]
    assert [(r.reason, r.location) for r in msg.rejections] == [("bad_time", "OBX^1^14")]


@pytest.mark.parametrize("unit", [PCT, "%", "%^%^UCUM", "262688", "^MDC_DIM_PERCENT^MDC", "percent",
                                  "MDC_DIM_PERCENT"])
def test_units_accepted(unit: str) -> None:
    msg = parse_pcd01(oru(nm(SPO2, "97", unit)))
    assert [o.parameter for o in msg.observations] == ["spo2"] and msg.rejections == ()


@pytest.mark.parametrize("unit", [MMHG, "", "mm[Hg]", "/min", "kPa", "262688^MDC_DIM_MMHG^MDC"])
def test_wrong_unit_rejected(unit: str) -> None:
    msg = parse_pcd01(oru(nm(SPO2, "97", unit), nm(HR, "70", "/min^/min^UCUM")))
    assert [o.parameter for o in msg.observations] == ["hr"]
    (rejection,) = msg.rejections
    assert rejection.reason == "wrong_unit" and rejection.parameter == "spo2"
    assert rejection.location == "OBX^1^6"


@pytest.mark.parametrize("body", [
    nm(SPO2, "", PCT),  # no value
    nm(SPO2, "97", PCT, status="X"),  # cannot be obtained
    nm(SPO2, "97", PCT, status="W"),  # posted in error
    nm(SPO2, "8388607", PCT),  # IEEE 11073 FLOAT NaN
])
def test_not_measured(body: str) -> None:
    msg = parse_pcd01(oru(body))
    assert msg.observations == () and msg.rejections == () and msg.not_measured == 1


@pytest.mark.parametrize("value", ["9 7", "97%", "nan", "inf", "1e2", "0x61", "97^98"])
def test_bad_value(value: str) -> None:
    (rejection,) = parse_pcd01(oru(nm(SPO2, value, PCT))).rejections
    assert rejection.reason == "bad_value"


def test_values_are_decimals() -> None:
    msg = parse_pcd01(oru(nm(SPO2, "+97.", PCT), nm(HR, " 072.50 ", BPM), nm(HR, "-5", BPM)))
    assert [o.value for o in msg.observations] == [97.0, 72.5, -5.0]  # the core judges ranges


def test_codes_by_number_name_and_alternate() -> None:
    msg = parse_pcd01(oru(
        nm("^MDC_PULS_OXIM_SAT_O2^MDC", "97", PCT),  # reference id only
        nm("0^MDC_PULS_OXIM_PULS_RATE^MDC", "71", BPM),  # code 0: not assigned
        nm("tt-0005-06^MDC_ECG_CARD_BEAT_RATE^MDC", "70", BPM),  # vendor-local identifier
        nm("150456", "96", PCT),  # number without a coding system
        nm("0002-4182^HR^MDIL^147842^MDC_ECG_HEART_RATE^MDC", "69", BPM),  # MDC as the alternate
        nm("149546^MDC_PULS_RATE_NON_INV^MDC", "68", BPM),  # PR from the cuff
    ))
    assert [(o.parameter, o.value) for o in msg.observations] == [
        ("spo2", 97), ("pr", 71), ("hr", 70), ("spo2", 96), ("hr", 69), ("pr", 68)]


def test_code_mismatch_is_refused() -> None:
    msg = parse_pcd01(oru(nm("150456^MDC_ECG_HEART_RATE^MDC", "97", PCT),
                          nm("150031^MDC_PRESS_CUFF_SYS^MDC", "120", MMHG)))
    assert msg.observations == ()
    assert [r.reason for r in msg.rejections] == ["code_mismatch", "code_mismatch"]


def test_unknown_codes_and_device_rows() -> None:
    msg = parse_pcd01(oru(
        "|69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X",  # device row: ignored
        nm("151562^MDC_RESP_RATE^MDC", "16", "264928^MDC_DIM_RESP_PER_MIN^MDC"),  # counted
        nm("8867-4^Heart rate^LN", "70", "/min"),  # not MDC: counted
        "ST|184327^MDC_ECG_STAT_RHY^MDC|1.2.4.20|MDC_ECG_PACED_RHY||||||F",  # no number: ignored
    ))
    assert msg.observations == () and msg.rejections == ()
    assert (msg.unknown_codes, msg.not_measured) == (2, 0)


def test_demo_flag_own_and_inherited() -> None:
    msg = parse_pcd01(oru(
        "|69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||MDS1^EUI-64",
        "|69642^MDC_DEV_ANALY_SAT_O2_VMD^MDC|1.3.0.0||||DEMO|||X",  # demo for the SpO2 VMD
        nm(SPO2, "97", PCT, sub_id="1.3.1.1"),
        nm(HR, "70", BPM, sub_id="1.2.1.1"),
        nm(HR, "71", BPM, sub_id="1.2.1.2", flags="DEMO"),
    ))
    assert [(o.parameter, bool(o.flags & QualityFlag.DEMO)) for o in msg.observations] == [
        ("spo2", True), ("hr", False), ("hr", True)]
    assert {o.equipment for o in msg.observations} == {"MDS1^EUI-64"}
    whole = parse_pcd01(oru("|69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|||||N~DEMO|||X",
                            nm(SPO2, "97", PCT, sub_id="1.3.1.1")))
    assert whole.observations[0].flags == QualityFlag.DEMO


@pytest.mark.parametrize(("text", "reason"), [
    ("hello world", "not_hl7"),
    ("", "not_hl7"),
    (b"\xff\xfe\x00garbage", "not_hl7"),
    ("PID|||123\rOBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||97|%", "no_msh"),
    ("MSH|", "malformed"),
    ("MSH|^~\\&|A||||20270115||ORU^R01|||2.6", "malformed"),  # no control id
    (oru(nm(SPO2, "97", PCT)) + "this is not a segment\r", "malformed"),
    (oru(nm(SPO2, "97", PCT)) + oru(nm(SPO2, "97", PCT)), "malformed"),  # two messages
    (S.ADT_A01, "unsupported_message"),
    (S.PCD04_ALARM, "unsupported_message"),
])
def test_parse_errors(text: str | bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_pcd01(text)
    assert info.value.reason == reason
    assert isinstance(info.value, Hl7ParseError)


_FUZZ_HEAD = "MSH|^~\\&|GW|F|||20270115075959||ORU^R01|X1|P|2.6\r"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="MSHOBXPV1R|^~\\&\r\n0123456789.+-X %DEMOC_", max_size=300))
def test_parser_raises_only_parse_errors(tail: str) -> None:
    for text in (tail, _FUZZ_HEAD + tail, _FUZZ_HEAD + "OBX|1|NM|" + tail):
        try:
            msg = parse_pcd01(text)
        except ParseError:
            continue
        for obs in msg.observations:
            assert isinstance(obs.value, float) and isinstance(obs.time, float)


def test_unsupported_message_keeps_its_header() -> None:
    with pytest.raises(Hl7ParseError) as info:
        parse_pcd01(S.PCD04_ALARM)
    assert info.value.header is not None and info.value.header.control_id == "ALM0001"
    assert "ORU^R40" in str(info.value) and info.value.hl7_code == "201"


def test_latin1_message() -> None:
    message = oru(nm(SPO2, "97", PCT), bed="Säal^^Bett 3")
    msg = parse_pcd01(message.encode("latin-1"))
    assert msg.bed == "Säal^^Bett 3" and msg.observations[0].value == 97


def test_id_candidates() -> None:
    assert id_candidates("VSP^080019FFFE0B4020^EUI-64") == [
        "VSP^080019FFFE0B4020^EUI-64", "VSP", "080019FFFE0B4020", "EUI-64"]
    assert id_candidates("") == [] and id_candidates(None) == []


# --- ACKs ----------------------------------------------------------------------------------


def test_build_ack_accept() -> None:
    header = parse_pcd01(S.GE_CARESCAPE).header
    ack = build_ack(header.control_id, "AA", header=header, now=T0)
    msh = hl7.parse(ack).segment("MSH")
    assert str(msh(3)) == "CHAIRSIDE" and str(msh(5)) == "VSP^080019FFFE3A7C21^EUI-64"
    assert str(msh(6)) == "GE Healthcare" and str(msh(7)) == "20270115080000+0000"
    assert str(msh(9)) == "ACK^R01^ACK" and str(msh(12)) == "2.6"
    assert ack.endswith("\r") and "\n" not in ack
    info = read_ack(ack)
    assert (info.code, info.control_id, info.text, info.reasons) == ("AA", header.control_id, "", ())


def test_build_ack_error_swaps_and_escapes() -> None:
    header = parse_pcd01(S.PHILIPS_INTELLIVUE).header
    ack = build_ack("A|B", "AE", "wrong_unit: unit 'mm^Hg' & more", "103", reason="wrong_unit",
                    header=header, now=T0)
    parsed = hl7.parse(ack)
    msh = parsed.segment("MSH")
    assert str(msh(3)) == "CHAIRSIDE" and str(msh(4)) == "INFUSION"
    assert str(msh(5)) == "IntelliBridge^0009FBFFFF9B42B3^EUI-64" and str(msh(6)) == "Philips"
    err = parsed.segment("ERR")
    assert str(err(3)) == "103^Table value not found^HL70357" and str(err(4)) == "E"
    info = read_ack(ack)
    assert info.code == "AE" and info.control_id == "A|B"
    assert info.text == "wrong_unit: unit 'mm^Hg' & more"
    assert info.reasons == ("wrong_unit",) and info.severities == ("E",)


def test_build_ack_without_header_and_many_errors() -> None:
    errors = [AckError("demo", f"row {i}", location=f"OBX^{i}^8") for i in range(30)]
    ack = build_ack("", "AE", "demo", errors=errors)
    assert ack.startswith("MSH|^~\\&|CHAIRSIDE|")
    assert len(read_ack(ack).reasons) == 20
    with pytest.raises(ValueError):
        build_ack("X", "OK")


def test_read_header() -> None:
    header = read_header(S.NIHON_KOHDEN[:120])
    assert header is not None and header.control_id == "NK000000004711" and header.kind == "ORU^R01"
    assert read_header("PID|1") is None and read_header("MSHXYZ") is None


# --- MLLP framing --------------------------------------------------------------------------

STREAM = (b"junk\x0b" + b"MSH|one" + b"\x1c\x0d" + b"\x0bMSH|two\x1c\x0d" + b"\r\n\x00"
          + b"\x0b" + b"X" * 50 + b"\x1c\x0d" + b"\x0bpartial\x0bMSH|three\x1c\x0d" + b"\x0bcut")


def _decode(chunks: list[bytes], limit: int = 40) -> list[Any]:
    decoder = MllpDecoder(limit)
    out: list[Any] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out + decoder.close()


def test_decoder() -> None:
    assert _decode([STREAM]) == [
        MllpProblem("garbage", 4, b"junk"), b"MSH|one", b"MSH|two", MllpProblem("garbage", 3, b"\r\n\x00"),
        MllpProblem("too_long", 50, b"X" * 50), MllpProblem("truncated", 7, b"partial"), b"MSH|three",
        MllpProblem("truncated", 3, b"cut")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_decoder_any_chunking(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    got = _decode(chunks)
    assert [m for m in got if isinstance(m, bytes)] == [b"MSH|one", b"MSH|two", b"MSH|three"]
    assert [(p.reason, p.size) for p in got if isinstance(p, MllpProblem)] == [
        ("garbage", 4), ("garbage", 3), ("too_long", 50), ("truncated", 7), ("truncated", 3)]


def test_frame() -> None:
    assert frame("MSH|x\r") == b"\x0bMSH|x\r\x1c\x0d"


# --- the listener, over TCP ----------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("bay", ["sqlite", "postgresql"], indirect=True)
def test_vendor_sample_accepted(name: str, bay: Harness, listener: Hl7Listener) -> None:
    message, chair, expected, device = SAMPLES[name]
    with client(listener) as c:
        ack = read_ack(c.send(message))
    assert (ack.code, ack.control_id) == ("AA", parse_pcd01(message).control_id)
    # AA comes only once the readings are committed: no flush needed to find them
    got = stored(bay, chair)
    assert {k: (v[0], v[1]) for k, v in got.items()} == expected
    assert {v[2] for v in got.values()} == {device}
    assert bay.monitor.status(chair).vitals["spo2"].value == expected["spo2"][0]


@pytest.mark.parametrize("bay", ["sqlite", "postgresql"], indirect=True)
def test_a_message_sent_again_is_answered_aa_and_stored_once_also_after_a_restart(bay: Harness) -> None:
    config = Hl7Source(kind="hl7", name="gw", host=HOST, port=0, beds=BEDS)

    def send(listener: Hl7Listener, message: str) -> str:
        with client(listener) as c:
            ack = read_ack(c.send(message))
        assert ack.control_id == parse_pcd01(message).control_id
        return ack.code

    first = oru(nm(SPO2, "97", PCT), control="A1")
    listener = Hl7Listener(config, bay.monitor)
    listener.start()
    try:
        assert send(listener, first) == "AA"
        assert send(listener, first.replace("20270115075959", "20270115080004")) == "AA"  # MSH-7 afresh
        assert listener.duplicates == 1 and bay.monitor.store.count_readings("c1") == 1
        assert send(listener, oru(nm(SPO2, "95", PCT), control="A1")) == "AA"  # a control id reused
        assert listener.duplicates == 1 and bay.monitor.store.count_readings("c1") == 2  # is another
        last = oru(nm(HR, "88", BPM), control="A2")
        assert send(listener, last) == "AA"  # its readings committed; say its ACK never arrives
    finally:
        listener.stop()
    # the server is killed (or its standby takes over): the message is sent again to the next
    restarted = Hl7Listener(config, bay.restart())
    restarted.start()
    try:
        assert send(restarted, last) == "AA"
        assert restarted.duplicates == 1 and restarted.health()["duplicates"] == 1
        assert bay.monitor.store.count_readings("c1") == 3
        assert send(restarted, oru(nm(HR, "89", BPM), control="A3")) == "AA"
        assert bay.monitor.store.count_readings("c1") == 4
    finally:
        restarted.stop()


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_separators_over_tcp(sep: str, bay: Harness, listener: Hl7Listener) -> None:
    with client(listener) as c:
        assert read_ack(c.send(S.GE_CARESCAPE.replace("\r", sep))).code == "AA"
    assert len(stored(bay, "c3")) == 6


def test_wrong_unit_answered_ae(bay: Harness, listener: Hl7Listener) -> None:
    with client(listener) as c:
        ack = read_ack(c.send(oru(nm(SPO2, "97", MMHG), control="WU1")))
    assert (ack.code, ack.control_id) == ("AE", "WU1")
    assert ack.reasons == ("wrong_unit",) and ack.text.startswith("wrong_unit")
    assert "mmHg" in ack.errors[0] or "MMHG" in ack.errors[0]
    assert listener.rejected.counts["wrong_unit"] == 1
    bay.flush()
    assert stored(bay, "c1") == {}


def test_partly_refused_message_is_accepted_with_warnings(bay: Harness, listener: Hl7Listener) -> None:
    with client(listener) as c:
        ack = read_ack(c.send(oru(nm(SPO2, "97", MMHG), nm(HR, "72", BPM))))
    assert ack.code == "AA" and ack.reasons == ("wrong_unit",) and ack.severities == ("W",)
    assert set(stored(bay, "c1")) == {"hr"}


def test_implausible_values_answered_ae(bay: Harness, listener: Hl7Listener) -> None:
    with client(listener) as c:
        ack = read_ack(c.send(oru(nm(SPO2, "30", PCT))))
    assert ack.code == "AE" and ack.reasons == ("implausible",)
    assert listener.rejected.counts["core:implausible"] == 1


def test_status_x_skipped(bay: Harness, listener: Hl7Listener) -> None:
    with client(listener) as c:
        ack = read_ack(c.send(oru(nm(SPO2, "97", PCT, status="X"), nm(HR, "", BPM), nm(HR, "70", BPM))))
    assert ack.code == "AA" and ack.reasons == ()
    assert set(stored(bay, "c1")) == {"hr"}
    assert listener.health()["skipped"]["not_measured"] == 2
    with client(listener) as c:  # nothing measured at all: still AA
        assert read_ack(c.send(oru(nm(SPO2, "", PCT)))).code == "AA"


def test_demo_refused_unless_accept_demo(bay: Harness,
                                         start_listener: Callable[..., Hl7Listener]) -> None:
    message = oru(nm(SPO2, "97", PCT, flags="DEMO"))
    strict = start_listener()
    with client(strict) as c:
        ack = read_ack(c.send(message))
    assert ack.code == "AE" and ack.reasons == ("demo",)
    assert strict.rejected.counts["demo"] == 1
    bay.flush()
    assert stored(bay, "c1") == {}
    lenient = start_listener(accept_demo=True)
    with client(lenient) as c:
        assert read_ack(c.send(message)).code == "AA"
    assert stored(bay, "c1")["spo2"][3] & QualityFlag.DEMO


def test_unknown_bed_answered_ae(bay: Harness, listener: Hl7Listener) -> None:
    message = oru(nm(SPO2, "97", PCT), nm(HR, "70", BPM), bed="ICU^^99", control="UB1")
    with client(listener) as c:
        ack = read_ack(c.send(message))
    assert (ack.code, ack.control_id, ack.reasons) == ("AE", "UB1", ("unknown_chair",))
    assert "ICU^^99" in ack.text
    assert listener.rejected.counts["unknown_chair"] == 2


def test_device_mapping_when_bed_unknown(bay: Harness, listener: Hl7Listener) -> None:
    message = oru(nm(SPO2, "97", PCT, equipment="DEV01^^^EUI-64"), bed="ICU^^99")
    with client(listener) as c:
        assert read_ack(c.send(message)).code == "AA"
    assert stored(bay, "c2")["spo2"][2] == "DEV01"


@pytest.mark.parametrize(("message", "control_id"), [(S.ADT_A01, "ADT000123"), (S.PCD04_ALARM, "ALM0001")])
def test_non_oru_answered_ar(message: str, control_id: str, listener: Hl7Listener) -> None:
    with client(listener) as c:
        ack = read_ack(c.send(message))
        assert (ack.code, ack.control_id, ack.reasons) == ("AR", control_id, ("unsupported_message",))
        assert read_ack(c.send(S.GE_CARESCAPE)).code == "AA"  # the connection goes on


def test_unparseable_answered_ar(listener: Hl7Listener) -> None:
    with client(listener) as c:
        ack = read_ack(c.send("this is no HL7"))
        assert (ack.code, ack.reasons) == ("AR", ("not_hl7",))
        assert read_ack(c.send(S.GE_CARESCAPE)).code == "AA"


def test_garbage_then_valid_frame_on_same_connection(listener: Hl7Listener) -> None:
    with client(listener) as c:
        c.send_raw(b"\x00\xffGET / HTTP/1.1\r\n\r\n" + b"\x1c\x0d")
        ack = read_ack(c.send(S.MINDRAY_BENEVISION))
    assert ack.code == "AA"
    assert listener.rejected.counts["mllp_garbage"] == 1


def test_disconnect_mid_frame_then_new_client(bay: Harness, listener: Hl7Listener) -> None:
    c = client(listener)
    c.send_raw(frame(S.PHILIPS_INTELLIVUE)[:200])
    c.close()
    wait_until(lambda: listener.rejected.counts["truncated"] == 1, what="the truncated frame")
    with client(listener) as c2:
        assert read_ack(c2.send(S.PHILIPS_INTELLIVUE)).code == "AA"
    assert len(stored(bay, "c1")) == 6


def test_oversized_message_refused_listener_survives(bay: Harness,
                                                     start_listener: Callable[..., Hl7Listener]) -> None:
    small = start_listener(max_message_bytes=1024)
    big = oru(nm(SPO2, "97", PCT), control="BIG1") + "NTE|1||" + "x" * 5000 + "\r"
    with client(small) as c:
        ack = read_ack(c.send(big))
        assert (ack.code, ack.control_id, ack.reasons) == ("AR", "BIG1", ("too_long",))
        assert read_ack(c.send(oru(nm(SPO2, "97", PCT)))).code == "AA"
    with client(small) as c:
        assert read_ack(c.send(oru(nm(HR, "70", BPM)))).code == "AA"
    assert small.rejected.counts["too_long"] == 1
    assert set(stored(bay, "c1")) == {"spo2", "hr"}


def test_concurrent_clients(bay: Harness, listener: Hl7Listener) -> None:
    clients, per_client = 20, 20
    failures: list[str] = []
    start = threading.Barrier(clients)

    def run(i: int) -> None:
        try:
            with client(listener, timeout=10) as c:
                start.wait(5)
                for j in range(per_client):
                    when = time.strftime("%Y%m%d%H%M%S", time.gmtime(T0 - 100 + j)) + "+0000"
                    message = oru(nm(SPO2, str(80 + j % 20), PCT, when=when),
                                  nm(HR, str(60 + i), BPM, when=when),
                                  control=f"C{i}-{j}", app=f"DEV{i:02d}", bed="")
                    ack = read_ack(c.send(message))
                    if (ack.code, ack.control_id) != ("AA", f"C{i}-{j}"):
                        failures.append(f"{i}/{j}: {ack}")
        except Exception as exc:
            failures.append(f"{i}: {exc!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    bay.flush()
    store = bay.monitor.store
    assert store is not None
    assert store.count_readings() == clients * per_client * 2
    keys = {(r.device, r.parameter, r.device_time)
            for chair in ("c1", "c2", "c3", "c4") for r in store.iter_readings(chair, 0, None)}
    assert len(keys) == clients * per_client * 2  # each stored exactly once
    assert listener.readings_accepted == clients * per_client * 2


def test_stop_with_clients_connected_is_prompt(listener: Hl7Listener) -> None:
    idle = [client(listener) for _ in range(4)]
    midframe = client(listener)
    midframe.send_raw(b"\x0bMSH|^~\\&|half a message")
    wait_until(lambda: listener.health()["connections"] == 5, what="5 connections")
    began = time.monotonic()
    listener.stop()
    assert time.monotonic() - began < scaled(2)  # a deadline, stretched on a loaded machine
    assert listener.state is SourceState.STOPPED and listener.health()["connections"] == 0
    for c in [*idle, midframe]:
        with contextlib.suppress(ConnectionResetError):
            assert c.sock.recv(10) == b""
        c.close()
    with pytest.raises(OSError):
        socket.create_connection((HOST, listener.port), timeout=1).close()


def test_idle_connection_times_out(start_listener: Callable[..., Hl7Listener]) -> None:
    quick = start_listener(idle_timeout_s=0.2)
    with client(quick) as c:
        assert c.sock.recv(10) == b""  # the listener closes it (the client waits up to 5 s)
    wait_until(lambda: quick.health()["idle_timeouts"] == 1, what="idle timeout count")
    with client(quick) as c:
        assert read_ack(c.send(S.GE_CARESCAPE)).code == "AA"


def test_client_connects_when_the_listener_comes(bay: Harness) -> None:
    with socket.socket() as probe:  # a port nobody listens on, then the listener takes it
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    c = MllpClient(HOST, port, timeout=5)
    assert not c.connected
    with pytest.raises(OSError):
        c.send(S.GE_CARESCAPE)
    listener = Hl7Listener(Hl7Source(kind="hl7", name="gw", host=HOST, port=port, devices=DEVICES),
                           bay.monitor)
    listener.start()
    try:
        assert read_ack(c.send(S.GE_CARESCAPE)).code == "AA"
        c.close()
        assert read_ack(c.send(S.GE_CARESCAPE)).code == "AA"  # reconnects after close
    finally:
        c.close()
        listener.stop()


def test_port_in_use_fails(bay: Harness, listener: Hl7Listener) -> None:
    other = Hl7Listener(Hl7Source(kind="hl7", name="gw2", host=HOST, port=listener.port or 1), bay.monitor)
    other.start()
    assert other.state is SourceState.FAILED and "cannot listen" in (other.last_error or "")
    other.stop()


class _NeverDurable:
    """A sink whose store never confirms a commit."""

    def __init__(self, bay: Harness) -> None:
        self.monitor = bay.monitor
        self.clock = bay.clock

    def ingest(self, readings: Any, receipt: Any = None) -> Any:
        return self.monitor.ingest(readings, receipt)

    def report_connection(self, chair: str, source: str, online: bool, detail: str = "") -> None:
        pass

    def on_durable(self, ticket: int | None, callback: Callable[[], None]) -> None:
        pass


def test_not_durable_answered_ar(bay: Harness) -> None:
    config = Hl7Source(kind="hl7", name="gw", port=0, beds=BEDS)
    listener = Hl7Listener(config, _NeverDurable(bay), durable_timeout_s=0.1)
    message = oru(nm(SPO2, "97", PCT)).encode()
    ack = read_ack(listener.handle_message(message))
    assert (ack.code, ack.reasons) == ("AR", ("not_durable",))
    assert listener.rejected.counts["not_durable"] == 1
    ack = read_ack(listener.handle_message(message))  # sent again: known, still not on disk
    assert (ack.code, ack.reasons) == ("AR", ("not_durable",))
    assert bay.monitor.accepted == 1 and listener.duplicates == 1  # in the core once


# --- bounds: observations per message, linear parsing, frame deadline ----------------------


def many_obx(n: int, control: str = "MANY") -> str:
    """An ORU^R01 of ``n`` OBX (HR and SpO2 alternating, each pair a second apart, ending
    just before T0), as a gateway batching a long stretch would send it."""
    def at(i: int) -> str:
        return time.strftime("%Y%m%d%H%M%S", time.gmtime(T0 - n // 2 - 1 + i // 2)) + "+0000"

    return oru(*(nm(SPO2, "97", PCT, when=at(i), sub_id=f"1.1.1.{i}") if i % 2 else
                 nm(HR, "70", BPM, when=at(i), sub_id=f"1.1.1.{i}") for i in range(n)),
               control=control)


def test_observation_cap_refuses_the_message_before_reading_it() -> None:
    assert len(parse_pcd01(many_obx(20), max_observations=20).observations) == 20
    with pytest.raises(Hl7ParseError) as info:
        parse_pcd01(many_obx(21, control="CAP1"), max_observations=20)
    assert info.value.reason == "too_many_observations"
    assert "21 OBX segments, over the limit of 20 per message" in str(info.value)
    assert info.value.header is not None and info.value.header.control_id == "CAP1"
    assert len(parse_pcd01(many_obx(21)).observations) == 21  # no cap unless asked


def _work_of_a_parse(n: int) -> tuple[int, int]:
    """(function calls, peak of the container objects the garbage collector tracks) while
    parsing a message of ``n`` OBX: both counted, neither timed. A profile hook sees every
    call; with the collector off, ``gc.get_count()[0]`` is the tracked objects allocated
    and not yet freed since the ``gc.collect()``, read at each call."""
    import gc
    import sys

    text = many_obx(n)
    calls = peak = 0

    def hook(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls, peak
        if event in ("call", "c_call"):
            calls += 1
            peak = max(peak, gc.get_count()[0])

    gc.collect()
    gc.disable()
    try:
        sys.setprofile(hook)
        try:
            parse_pcd01(text)
        finally:
            sys.setprofile(None)
    finally:
        gc.enable()
    return calls, peak


def test_parsing_work_grows_linearly_with_the_obx_count() -> None:
    """Issue 11 point 7 (500/2000/5000/7650 OBX took 1.6/4.1/11.7/~25 s): the parse did a
    constant amount of work per OBX but built some 28 container objects per OBX, and the
    garbage collector's passes over them grew with the message. Now each OBX costs the same
    number of calls, and a few tracked objects at the parse's peak (its field list, its row,
    its observation: 5 here), at any message size."""
    calls_1k, objects_1k = _work_of_a_parse(1000)
    calls_4k, objects_4k = _work_of_a_parse(4000)
    assert 3.9 <= calls_4k / calls_1k <= 4.1
    assert objects_4k - objects_1k <= 8 * 3000  # tracked objects per extra OBX, at the peak
    msg = parse_pcd01(many_obx(5000))  # well within the suite's time, whatever the machine
    assert len(msg.observations) == 5000 and not msg.rejections


def test_message_over_the_observation_cap_answered_ar_listener_keeps_serving(
        bay: Harness, start_listener: Callable[..., Hl7Listener], caplog: pytest.LogCaptureFixture) -> None:
    capped = start_listener(max_observations=10)
    with client(capped) as c:
        ack = read_ack(c.send(many_obx(11, control="BIG11")))
        assert (ack.code, ack.control_id, ack.reasons) == ("AR", "BIG11", ("too_many_observations",))
        assert "over the limit of 10 per message" in ack.text and "limit of 10" in ack.errors[0]
        bay.flush()
        assert stored(bay, "c1") == {}  # nothing of it
        ack = read_ack(c.send(many_obx(10, control="OK10")))  # same connection: still served
        assert (ack.code, ack.control_id) == ("AA", "OK10")
    assert capped.rejected.counts["too_many_observations"] == 1
    assert any("too_many_observations" in r.getMessage() and "11 OBX" in r.getMessage()
               for r in caplog.records)
    bay.flush()
    assert set(stored(bay, "c1")) == {"hr", "spo2"}


def test_default_cap_refuses_a_huge_message_and_a_raised_cap_takes_5000_obx(
        bay: Harness, start_listener: Callable[..., Hl7Listener]) -> None:
    assert Hl7Source(kind="hl7", name="x").max_observations == 500
    default = start_listener()
    with client(default, timeout=60) as c:
        ack = read_ack(c.send(many_obx(5000, control="HUGE")))
    assert (ack.code, ack.reasons) == ("AR", ("too_many_observations",))
    raised = start_listener(max_observations=5000)
    with client(raised, timeout=60) as c:
        assert read_ack(c.send(many_obx(5000, control="HUGE2"))).code == "AA"
    bay.flush()
    assert bay.monitor.store is not None and bay.monitor.store.count_readings() == 5000


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("max_observations", 0, "Input should be greater than or equal to 1"),
    ("max_observations", "many", "Input should be a valid integer"),
    ("frame_deadline_s", 0, "Input should be greater than 0"),
    ("frame_deadline_s", 3600, "Input should be less than or equal to 600"),
])
def test_bounds_configuration_is_validated(tmp_path: Path, key: str, value: Any, problem: str) -> None:
    from monitor.config import ConfigError, load_config

    path = tmp_path / "bay.toml"
    path.write_text(f'[[chairs]]\nid = "c1"\n[[sources]]\nkind = "hl7"\nname = "gw"\n{key} = {value!r}\n'
                    .replace("'", '"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"bay.toml: sources[0].hl7.{key}: {problem}" in str(info.value)


def test_trickling_peers_lose_their_slots_at_the_frame_deadline(
        bay: Harness, start_listener: Callable[..., Hl7Listener], caplog: pytest.LogCaptureFixture) -> None:
    """Issue 11 point 7 (62 half-sent frames held all 64 slots; a real gateway was then
    refused): every slot is taken by a peer that begins a frame and then trickles a byte at
    a time, which no idle timeout catches; at the frame deadline they are closed, and a real
    gateway is served."""
    slots = 3
    gw = start_listener(max_connections=slots, frame_deadline_s=0.5)  # idle_timeout_s: 300 s
    peers = [socket.create_connection((HOST, gw.port or 0), timeout=5) for _ in range(slots)]
    names = [f"{HOST}:{p.getsockname()[1]}" for p in peers]  # as the listener sees them
    wait_until(lambda: gw.health()["connections"] == slots, what="every slot taken")
    with client(gw) as refused, pytest.raises(OSError):  # idle peers hold the slots: no deadline
        refused.send(S.GE_CARESCAPE)
    assert gw.rejected.counts["too_many_connections"] == 1

    done = threading.Event()

    def trickle(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # ends when the listener closes the connection
            sock.sendall(b"\x0bMSH|^~\\&|SLOWLORIS|")
            while not done.is_set():
                sock.sendall(b"x")
                done.wait(0.05)  # the trickle's pace, not a wait for the test

    threads = [threading.Thread(target=trickle, args=(p,), daemon=True) for p in peers]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: gw.rejected.counts["frame_deadline"] == slots, what="the frame deadlines")
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)  # each peer saw its connection closed
        wait_until(lambda: gw.health()["connections"] == 0, what="the slots freed")
        with client(gw) as real:
            ack = read_ack(real.send(S.GE_CARESCAPE))
        assert ack.code == "AA"
    finally:
        done.set()
        for p in peers:
            p.close()
    assert gw.health()["idle_timeouts"] == 0 and gw.rejected.counts["truncated"] == 0
    details = [r.detail for r in gw.rejected.recent if r.reason == "frame_deadline"]
    for name in names:
        assert any(d.startswith(f"{name}: MLLP frame not complete 0.5 s after it began") for d in details)
    assert any("frame_deadline" in r.getMessage() and any(n in r.getMessage() for n in names)
               for r in caplog.records)
    bay.flush()
    assert stored(bay, "c3")
