"""Serial lines, one constant per dialect variant (docs/protocols.md, section Serial
lines).

Every constant is a :class:`~samples.provenance.Sample` naming where it came from. None of
these was captured from a unit in this project: most are synthetic, written after the
published device output named in their provenance, with serial numbers, dates and values
made up; the contract's own examples are marked ``spec``. The lines as published by people
who captured them from real devices are in :mod:`samples.captures`. Lines are given
without their CR LF terminator.
"""

from samples.provenance import Sample, spec, synthetic

# --- Masimo ASCII 1 ----------------------------------------------------------------------
# Layout: "MM/DD/YY HH:MM:SS" then KEY=VALUE tokens; keys and their order differ by model.

# Radical-7 (mono/"blue" screen): the token set of the serial example in the Radical-7
# service manual (SN SPO2 BPM PI SPCO SPMET DESAT PIDELTA PVI ALARM EXC), Rainbow
# parameters not licensed so SpCO/SpMet are dashes. Normal operation, no exception.
MASIMO_RADICAL7 = Sample(
    (
        "11/23/26 19:40:01 SN=0000071234 SPO2=097% BPM=072 PI=02.13% SPCO=--.-% SPMET=--.-% "
        "DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000000"
    ),
    synthetic("the serial example of the Radical-7 service manual (token set and widths; "
              "captures.MASIMO_RADICAL7_MANUAL)",
              "serial number, date and values"),
)

# Radical-7 colour screen with Rainbow: adds SPHB, SPOC, RESVD and EXC1, PI without "%",
# a 7-digit EXC and a 6-digit ALARM, as logged from a colour Radical-7 by public capture
# tools. EXC 0000C00 = 800 (Masimo SET mode, normal) + 400 (low signal IQ).
MASIMO_RADICAL7_COLOR = Sample(
    (
        "11/23/26 19:40:02 SN=0000071234 SPO2=096% BPM=074 PI=00.55 SPCO=01% SPMET=00.8% "
        "SPHB=13.1 SPOC=19 RESVD=--- DESAT=-- PIDELTA=+-- PVI=014 ALARM=000000 EXC=0000C00 "
        "EXC1=00000000"
    ),
    synthetic("the colour Radical-7 line in remkolems/masimo-datacapture "
              "(captures.MASIMO_RADICAL7_COLOR_CAPTURE)",
              "serial number, date and values; SPCO written 01% instead of --%"),
)

# Rad-8 in "ASCII 1" serial mode (the factory default is ASCII 2): the layout printed by
# Rad-8 units in public capture logs. EXC 000800 = Masimo SET mode only: no quality flag.
MASIMO_RAD8 = Sample(
    (
        "02/22/26 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% "
        "DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800"
    ),
    synthetic("the Rad-8 lines in hansmuc/NellcorN560Seriell (captures.MASIMO_RAD8_CAPTURE)",
              "serial number, date and values; DESAT/PIDELTA kept as published"),
)

# Rad-8, minimal line with no sensor connected: no PI/SPCO/SPMET tokens at all (the shape
# of a Rad-8 "no sensor" line in public capture tools). EXC 000001 = no sensor.
MASIMO_RAD8_NO_SENSOR = Sample(
    (
        "03/19/26 13:37:12 SN=0000093112 SPO2=---% BPM=--- DESAT=-- PIDELTA=+-- ALARM=0000 "
        "EXC=000001"
    ),
    synthetic("the Rad-8 no-sensor line in remkolems/masimo-datacapture "
              "(captures.MASIMO_RAD8_NO_SENSOR_CAPTURE)",
              "the year (16 -> 26); BPM written without the published trailing %"),
)

# Rad-97: assumed to print the Rainbow token set of the colour Radical-7 (SPHB, SPOC,
# RESVD, EXC1), here in another order (PVI before DESAT, ALARM after EXC) to show that
# parsing goes by key. Not checked against a Rad-97 unit. EXC 000824 = SET + sensor off
# + low perfusion, ALARM 0010 = alarm sounding, the combination seen in a public log.
MASIMO_RAD97 = Sample(
    (
        "05/20/26 14:06:02 SN=0000182948 SPO2=098% BPM=101 PI=--.--% SPHB=--.- SPOC=-- "
        "PVI=--- SPCO=--.-% SPMET=--.-% RESVD=--- DESAT=-- PIDELTA=+-- EXC=000824 "
        "EXC1=00000000 ALARM=0010"
    ),
    synthetic("the colour Radical-7 token set; a Rad-97 line was not found in public sources",
              "the whole line: token order shuffled on purpose, values and EXC/ALARM words"),
)

# Radical-7 during pulse search with interference and a low SpO2 alarm: values present,
# EXC 000018 = pulse search + interference.
MASIMO_RADICAL7_SEARCH = Sample(
    (
        "11/23/26 19:41:10 SN=0000071234 SPO2=088% BPM=131 PI=00.41% SPCO=--.-% SPMET=--.-% "
        "DESAT=-- PIDELTA=+-- PVI=--- ALARM=0012 EXC=000018"
    ),
    synthetic("MASIMO_RADICAL7 and the EXC bit table of the Rad-8 operator's manual (as quoted "
              "in remkolems/masimo-datacapture)",
              "values and the EXC/ALARM words"),
)

# --- Nonin ASCII ---------------------------------------------------------------------------

# 7500 / 7500FO (and Avant 9600 with DIP switch 8 down): "SPO2=XXX HR=YYY", CR LF, 1/s.
NONIN_7500 = Sample(
    "SPO2=097 HR=072",
    synthetic("docs/protocols.md, section Nonin ASCII (SPO2=XXX HR=YYY)", "values"),
)

# Any Nonin model with no data from the oximeter (sensor off, or still searching).
NONIN_NO_DATA = Sample(
    "SPO2=--- HR=---",
    synthetic("docs/protocols.md, section Nonin ASCII (--- for no value)", "nothing: the form itself"),
)

# Avant 9600 / BT4000 with DIP switch 8 up: fast-responding values, marked "F".
NONIN_AVANT9600_FAST = Sample(
    "SPO2=096 HR=071 F",
    synthetic("the model note above (F marker); not checked against a unit or its manual", "values"),
)

# 7500FO / BT4000: ON/STANDBY pressed, "*" event marker at the end of the line.
NONIN_EVENT_MARKER = Sample(
    "SPO2=097 HR=073*",
    synthetic("the model note above (* event marker); not checked against a unit or its manual", "values"),
)

# 9847 / 8600V: the real-time line starts with the device clock "HH:MM:SS"; the 9847
# appends "B" when a breath was detected in the last interval.
NONIN_9847_BREATH = Sample(
    "14:00:05 SPO2=095 HR=068 B",
    synthetic("the model note above (time first, B marker); not checked against a unit or its manual",
              "time and values"),
)

# --- Nellcor trend output ------------------------------------------------------------------
# Header (model, software version, CRC, alarm limits), an optional patient-mode line, the
# column line, then one row per interval. Header and column lines repeat periodically.

# N-600x header in the style of the N-5xx headers ("N-560 VERSION 1.61.00 CRC:XXXX SpO2
# Limit: 92-100% PR Limit: 90-180BPM" as quoted by an open-source N-560 reader).
NELLCOR_N600X_HEADER = Sample(
    "N-600x VERSION 1.2.3.4 CRC:XXXX SpO2 Limit: 90-100% PR Limit: 50-120BPM",
    synthetic("the N-560 header in hansmuc/NellcorN560Seriell (captures.NELLCOR_N560_HEADER_CAPTURE)",
              "the model (N-600x, not seen on a unit), version and limits"),
)

# N-595 header as some firmware prints it, with the maker's name first.
NELLCOR_N595_HEADER = Sample(
    "Nellcor N-595 VERSION 1.50.00 CRC:3F2A SpO2 Limit: 85-100% PR Limit: 40-170BPM",
    synthetic("NELLCOR_N600X_HEADER, with the maker's name first", "the whole header; not seen on a unit"),
)

# Patient-mode line printed under the header (indented, as in the N-560 quote).
NELLCOR_MODE_LINE = Sample(
    "                 ADULT         0SAT-S",
    synthetic("the N-560 patient-mode line in hansmuc/NellcorN560Seriell "
              "(captures.NELLCOR_N560_MODE_CAPTURE)",
              "the padding and the 0SAT-S value"),
)

# Column line, as docs/protocols.md writes it and as the N-560 prints it (mixed case, padded).
NELLCOR_COLUMNS = Sample(
    "TIME %SPO2 BPM PA Status",
    spec("docs/protocols.md, section Nellcor trend output: the column line as the contract writes it"),
)
NELLCOR_COLUMNS_PADDED = Sample(
    "TIME                 %SpO2   BPM   PA  Status",
    synthetic("the N-560 column line in hansmuc/NellcorN560Seriell (captures.NELLCOR_N560_COLUMNS_CAPTURE)",
              "the padding (narrower than published)"),
)

# Data rows: normal, then motion with pulse search and an alarm silenced, then sensor off
# (no values), then the mixed-case month some firmware prints.
NELLCOR_ROW = Sample(
    "12-NOV-25 14:00:05    97    72   50",
    synthetic("the contract's row example in docs/protocols.md and the N-560 rows of "
              "hansmuc/NellcorN560Seriell",
              "date and values"),
)
NELLCOR_ROW_MOTION = Sample(
    "12-NOV-25 14:00:10    91   118   12 MO PS AS SL",
    synthetic("the status codes of docs/protocols.md (MO, PS, AS, SL)",
              "date, values and the combination of codes"),
)
NELLCOR_ROW_SENSOR_OFF = Sample(
    "12-NOV-25 14:00:15   ---   ---  --- SO",
    synthetic("docs/protocols.md, section Nellcor trend output (--- and SO)", "date"),
)
NELLCOR_ROW_MIXED_CASE = Sample(
    "02-Feb-26 13:26:32   100   139   30 MO",
    synthetic("the row quoted in a comment of hansmuc/NellcorN560Seriell (02-Feb-00 13:26:32 100 139 30 MO)",
              "the year (00 -> 26) and the padding"),
)
NELLCOR_ROW_LOW_BATTERY = Sample(
    "12-NOV-25 14:00:20    96    75   48 LB SD LP",
    synthetic("the status codes of docs/protocols.md (LB, SD, LP)",
              "date, values and the combination of codes"),
)

# --- Chairside line ------------------------------------------------------------------------
# docs/protocols.md, section Chairside line: for multi-parameter monitors, NIBP modules and DIY devices.

# The contract's own example.
CHAIRSIDE_CONTRACT = Sample(
    "$VT,seq=1842,hr=72,spo2=98,pr=71,nibp=121/79/93,flags=SENSOR_OFF|LOW_PERFUSION*4C",
    spec("docs/protocols.md, section Chairside line: the contract's own example"),
)

# An NIBP module reporting one cuff cycle, with its id and an RFC 3339 time.
CHAIRSIDE_NIBP_MODULE = Sample(
    "$VT,seq=77,dev=nibp-bay2-04,ts=2026-11-23T19:40:01.250Z,nibp=118/76/90*74",
    synthetic("docs/protocols.md, section Chairside line (nibp, dev, ts)", "device id, time and values"),
)

# Fields in another order; empty pr and spo2 (no value) with the sensor missing.
CHAIRSIDE_EMPTY_FIELDS = Sample(
    "$VT,flags=NO_SENSOR,pr=,seq=12,spo2=,hr=64*04",
    synthetic("docs/protocols.md, section Chairside line (empty fields, any order)", "values"),
)

# A DIY device: UNIX seconds, and a firmware field Chairside does not know (ignored).
CHAIRSIDE_DIY_UNIX_TS = Sample(
    "$VT,seq=5,ts=1795462801.5,dev=diy-esp32-07,hr=81,spo2=97,fw=1.4.2*49",
    synthetic("docs/protocols.md, section Chairside line (ts as UNIX seconds, unknown keys ignored)",
              "device id, time, values and the fw field"),
)

# Empty nibp and flags fields: no NIBP in this line, no flags.
CHAIRSIDE_EMPTY_NIBP = Sample(
    "$VT,seq=9,hr=70,spo2=99,pr=70,nibp=,flags=*70",
    synthetic("docs/protocols.md, section Chairside line (empty nibp and flags)", "values"),
)
