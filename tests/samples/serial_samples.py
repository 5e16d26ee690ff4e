"""Real-looking serial lines, one constant per dialect variant (PROTOCOLS.md section 3).

None of these was captured from a unit in this project. Each follows the layout of
published device output named in its comment (operator and service manuals, and lines
logged by public open-source capture tools for these devices); serial numbers, dates and
values are made up. Lines are given without their CR LF terminator.
"""

# --- Masimo ASCII 1 ----------------------------------------------------------------------
# Layout: "MM/DD/YY HH:MM:SS" then KEY=VALUE tokens; keys and their order differ by model.

# Radical-7 (mono/"blue" screen): the token set of the serial example in the Radical-7
# service manual (SN SPO2 BPM PI SPCO SPMET DESAT PIDELTA PVI ALARM EXC), Rainbow
# parameters not licensed so SpCO/SpMet are dashes. Normal operation, no exception.
MASIMO_RADICAL7 = (
    "11/23/26 19:40:01 SN=0000071234 SPO2=097% BPM=072 PI=02.13% SPCO=--.-% SPMET=--.-% "
    "DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000000"
)

# Radical-7 colour screen with Rainbow: adds SPHB, SPOC, RESVD and EXC1, PI without "%",
# a 7-digit EXC and a 6-digit ALARM, as logged from a colour Radical-7 by public capture
# tools. EXC 0000C00 = 800 (Masimo SET mode, normal) + 400 (low signal IQ).
MASIMO_RADICAL7_COLOR = (
    "11/23/26 19:40:02 SN=0000071234 SPO2=096% BPM=074 PI=00.55 SPCO=01% SPMET=00.8% "
    "SPHB=13.1 SPOC=19 RESVD=--- DESAT=-- PIDELTA=+-- PVI=014 ALARM=000000 EXC=0000C00 "
    "EXC1=00000000"
)

# Rad-8 in "ASCII 1" serial mode (the factory default is ASCII 2): the layout printed by
# Rad-8 units in public capture logs. EXC 000800 = Masimo SET mode only: no quality flag.
MASIMO_RAD8 = (
    "02/22/26 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% "
    "DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800"
)

# Rad-8, minimal line with no sensor connected: no PI/SPCO/SPMET tokens at all (the shape
# of a Rad-8 "no sensor" line in public capture tools). EXC 000001 = no sensor.
MASIMO_RAD8_NO_SENSOR = (
    "03/19/26 13:37:12 SN=0000093112 SPO2=---% BPM=--- DESAT=-- PIDELTA=+-- ALARM=0000 "
    "EXC=000001"
)

# Rad-97: assumed to print the Rainbow token set of the colour Radical-7 (SPHB, SPOC,
# RESVD, EXC1), here in another order (PVI before DESAT, ALARM after EXC) to show that
# parsing goes by key. Not checked against a Rad-97 unit. EXC 000824 = SET + sensor off
# + low perfusion, ALARM 0010 = alarm sounding, the combination seen in a public log.
MASIMO_RAD97 = (
    "05/20/26 14:06:02 SN=0000182948 SPO2=098% BPM=101 PI=--.--% SPHB=--.- SPOC=-- "
    "PVI=--- SPCO=--.-% SPMET=--.-% RESVD=--- DESAT=-- PIDELTA=+-- EXC=000824 "
    "EXC1=00000000 ALARM=0010"
)

# Radical-7 during pulse search with interference and a low SpO2 alarm: values present,
# EXC 000018 = pulse search + interference.
MASIMO_RADICAL7_SEARCH = (
    "11/23/26 19:41:10 SN=0000071234 SPO2=088% BPM=131 PI=00.41% SPCO=--.-% SPMET=--.-% "
    "DESAT=-- PIDELTA=+-- PVI=--- ALARM=0012 EXC=000018"
)

# --- Nonin ASCII ---------------------------------------------------------------------------

# 7500 / 7500FO (and Avant 9600 with DIP switch 8 down): "SPO2=XXX HR=YYY", CR LF, 1/s.
NONIN_7500 = "SPO2=097 HR=072"

# Any Nonin model with no data from the oximeter (sensor off, or still searching).
NONIN_NO_DATA = "SPO2=--- HR=---"

# Avant 9600 / BT4000 with DIP switch 8 up: fast-responding values, marked "F".
NONIN_AVANT9600_FAST = "SPO2=096 HR=071 F"

# 7500FO / BT4000: ON/STANDBY pressed, "*" event marker at the end of the line.
NONIN_EVENT_MARKER = "SPO2=097 HR=073*"

# 9847 / 8600V: the real-time line starts with the device clock "HH:MM:SS"; the 9847
# appends "B" when a breath was detected in the last interval.
NONIN_9847_BREATH = "14:00:05 SPO2=095 HR=068 B"

# --- Nellcor trend output ------------------------------------------------------------------
# Header (model, software version, CRC, alarm limits), an optional patient-mode line, the
# column line, then one row per interval. Header and column lines repeat periodically.

# N-600x header in the style of the N-5xx headers ("N-560 VERSION 1.61.00 CRC:XXXX SpO2
# Limit: 92-100% PR Limit: 90-180BPM" as quoted by an open-source N-560 reader).
NELLCOR_N600X_HEADER = "N-600x VERSION 1.2.3.4 CRC:XXXX SpO2 Limit: 90-100% PR Limit: 50-120BPM"

# N-595 header as some firmware prints it, with the maker's name first.
NELLCOR_N595_HEADER = "Nellcor N-595 VERSION 1.50.00 CRC:3F2A SpO2 Limit: 85-100% PR Limit: 40-170BPM"

# Patient-mode line printed under the header (indented, as in the N-560 quote).
NELLCOR_MODE_LINE = "                 ADULT         0SAT-S"

# Column line, as PROTOCOLS.md writes it and as the N-560 prints it (mixed case, padded).
NELLCOR_COLUMNS = "TIME %SPO2 BPM PA Status"
NELLCOR_COLUMNS_PADDED = "TIME                 %SpO2   BPM   PA  Status"

# Data rows: normal, then motion with pulse search and an alarm silenced, then sensor off
# (no values), then the mixed-case month some firmware prints.
NELLCOR_ROW = "12-NOV-25 14:00:05    97    72   50"
NELLCOR_ROW_MOTION = "12-NOV-25 14:00:10    91   118   12 MO PS AS SL"
NELLCOR_ROW_SENSOR_OFF = "12-NOV-25 14:00:15   ---   ---  --- SO"
NELLCOR_ROW_MIXED_CASE = "02-Feb-26 13:26:32   100   139   30 MO"
NELLCOR_ROW_LOW_BATTERY = "12-NOV-25 14:00:20    96    75   48 LB SD LP"

# --- Chairside line ------------------------------------------------------------------------
# PROTOCOLS.md section 3, for multi-parameter monitors, NIBP modules and DIY devices.

# The contract's own example.
CHAIRSIDE_CONTRACT = "$VT,seq=1842,hr=72,spo2=98,pr=71,nibp=121/79/93,flags=SENSOR_OFF|LOW_PERFUSION*4C"

# An NIBP module reporting one cuff cycle, with its id and an RFC 3339 time.
CHAIRSIDE_NIBP_MODULE = "$VT,seq=77,dev=nibp-bay2-04,ts=2026-11-23T19:40:01.250Z,nibp=118/76/90*74"

# Fields in another order; empty pr and spo2 (no value) with the sensor missing.
CHAIRSIDE_EMPTY_FIELDS = "$VT,flags=NO_SENSOR,pr=,seq=12,spo2=,hr=64*04"

# A DIY device: UNIX seconds, and a firmware field Chairside does not know (ignored).
CHAIRSIDE_DIY_UNIX_TS = "$VT,seq=5,ts=1795462801.5,dev=diy-esp32-07,hr=81,spo2=97,fw=1.4.2*49"

# Empty nibp and flags fields: no NIBP in this line, no flags.
CHAIRSIDE_EMPTY_NIBP = "$VT,seq=9,hr=70,spo2=99,pr=70,nibp=,flags=*70"
