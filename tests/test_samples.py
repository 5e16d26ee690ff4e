"""Every sample the parsers are tested on says where it came from (tests/samples/README.md),
and the lines published from real devices parse as Chairside should read them."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest
import samples
from samples import captures as c
from samples.provenance import KINDS, Provenance, Sample

from monitor.readings import QualityFlag
from monitor.seam import Frame
from wire.lines import LineSplitter
from wire.serial.masimo import parse_masimo
from wire.serial.nellcor import parse_nellcor

SAMPLE_MODULES = sorted(m.name for m in pkgutil.iter_modules(samples.__path__) if m.name != "provenance")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"samples.{name}")


def _constants(module: ModuleType) -> dict[str, str]:
    return {k: v for k, v in vars(module).items()
            if isinstance(v, str) and k.isupper() and not k.startswith("_")}


def test_the_sample_modules_are_found():
    assert {"captures", "hl7_samples", "serial_samples"} <= set(SAMPLE_MODULES)


@pytest.mark.parametrize("name", SAMPLE_MODULES)
def test_every_sample_has_a_provenance(name: str):
    """A text constant of a sample module is a Sample with a complete provenance, or an
    identifier taken from one of its Samples (a bed, a device id the tests look for)."""
    module = _module(name)
    constants = _constants(module)
    found = {k: v for k, v in constants.items() if isinstance(v, Sample)}
    assert found, f"samples.{name} holds no Sample"
    for key, value in constants.items():
        if isinstance(value, Sample):
            continue
        assert any(value in s for s in found.values()), (
            f"samples.{name}.{key} is a plain string that no sample contains: make it a "
            f"Sample(text, provenance) (tests/samples/provenance.py) naming where it came from")
    for key, value in found.items():
        p = value.provenance
        assert isinstance(p, Provenance), key
        assert p.kind in KINDS, f"{key}: kind {p.kind!r}"
        assert len(p.source) >= 20, f"{key}: say what it came from or was written after"
        if p.kind in ("capture", "vendor_doc"):
            assert p.url.startswith("https://"), f"{key}: a {p.kind} needs the address it was published at"
            assert p.licence, f"{key}: a {p.kind} needs the terms it was published under"
        if p.kind == "synthetic":
            assert p.source.startswith("written for Chairside after "), key


def test_a_plain_string_sample_would_fail(monkeypatch):
    """The check above is not vacuous: a new sample without a provenance is caught."""
    module = _module("serial_samples")
    monkeypatch.setattr(module, "NONIN_NEW_MODEL", "SPO2=099 HR=061 Q", raising=False)
    with pytest.raises(AssertionError, match="NONIN_NEW_MODEL is a plain string"):
        test_every_sample_has_a_provenance("serial_samples")


def test_a_sample_stays_its_text():
    line = c.MASIMO_RAD8_CAPTURE
    assert isinstance(line, str) and line == str(line) and line.split()[0] == "02/24/18"
    assert (line + "\r\n").encode().endswith(b"EXC=000800\r\n")


# --- what Chairside makes of the published device output ------------------------------------

MASIMO = {  # name -> (values, flags, device, extra subset)
    "MASIMO_RAD8_NO_SENSOR_CAPTURE": ({"spo2": None, "pr": None}, QualityFlag.NO_SENSOR,
                                      "masimo-0000093112", {"exc": 0x001, "alarm": 0}),
    "MASIMO_RADICAL7_COLOR_CAPTURE": ({"spo2": 98.0, "pr": 123.0}, QualityFlag.LOW_SIGNAL_QUALITY,
                                      None, {"exc": 0xC00, "pi": 0.55, "sphb": None, "spco": None,
                                             "exc1": "00000000"}),
    "MASIMO_RADICAL7_MANUAL": ({"spo2": None, "pr": None}, QualityFlag.NONE, "masimo-0000070986",
                               {"exc": 0, "pi": None}),
    "MASIMO_RAD8_CAPTURE": ({"spo2": 97.0, "pr": 80.0}, QualityFlag.NONE, "masimo-0000145838",
                            {"exc": 0x800, "pi": 4.96, "device_local_time": "02/24/18 04:48:53"}),
}

NELLCOR_NON_DATA = ["NELLCOR_N560_HEADER_CAPTURE", "NELLCOR_N560_MODE_CAPTURE",
                    "NELLCOR_N560_COLUMNS_CAPTURE"]


def _through_the_wire(line: str) -> str:
    """The line as the serial source gets it: CR LF terminated, in odd-sized chunks."""
    data = (line + "\r\n").encode()
    splitter = LineSplitter()
    lines = [x for i in range(0, len(data), 5) for x in splitter.feed(data[i:i + 5])]
    assert len(lines) == 1 and isinstance(lines[0], str)
    return lines[0]


@pytest.mark.parametrize("name", MASIMO)
def test_published_masimo_lines(name: str):
    values, flags, device, extra = MASIMO[name]
    frame = parse_masimo(_through_the_wire(getattr(c, name)))
    assert frame.values == values
    assert frame.flags == flags
    assert frame.device == device
    assert {k: frame.extra.get(k) for k in extra} == extra
    assert frame.time is None  # a local time without a zone: the receive time is used


@pytest.mark.parametrize("name", NELLCOR_NON_DATA)
def test_published_nellcor_header_lines_carry_no_reading(name: str):
    line = _through_the_wire(getattr(c, name))
    assert parse_nellcor(line) is None


def test_published_nellcor_row():
    frame = parse_nellcor(_through_the_wire(c.NELLCOR_N560_ROW_CAPTURE))
    assert frame == Frame(values={"spo2": 100.0, "pr": 102.0}, flags=int(QualityFlag.MOTION),
                          extra={"device_local_time": "07-Jan-04 11:24:54", "pulse_amplitude": 36.0,
                                 "status": ["MO", "AO"]})


def test_every_capture_is_checked():
    checked = set(MASIMO) | set(NELLCOR_NON_DATA) | {"NELLCOR_N560_ROW_CAPTURE"}
    assert set(_constants(c)) == checked
