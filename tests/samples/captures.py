"""Device output as published by people who captured it from real units, kept as published.

Each constant is one line exactly as it appears in the public source named in its
provenance (only a log prefix or a comment's wrapping removed, as ``changed`` says), so the
parsers are tested on bytes a real device sent, not only on lines written after its manual.
``tests/test_samples.py`` parses every one and checks what Chairside makes of it.

These are short excerpts of machine output quoted for interoperability testing, with the
address they were published at; the licence is the one the publishing repository states.
"""

from samples.provenance import Sample, capture, vendor_doc

_MASIMO_CAPTURE = ("https://github.com/remkolems/masimo-datacapture/blob/"
                   "33c93e388e59ad285b010b643820adba5f7769b9/masimo-capture.py")
_MASIMO_LICENCE = "BSD-2-Clause (Copyright (c) 2020, Nishanth Menon/Remko Lems)"
_N560 = ("https://github.com/hansmuc/NellcorN560Seriell/blob/"
         "af71b37a0accd512064843bc5470197fbae60c16/src/server/AsixReader.java")
_N560_LICENCE = "none stated in the repository; quoted device output only"

# --- Masimo ASCII 1 ------------------------------------------------------------------------

# A Rad-8 with no sensor, as logged by the author of masimo-datacapture (comment above
# _parse_rad8_serial_1). Note the published "BPM=---%": Chairside reads it as no value.
MASIMO_RAD8_NO_SENSOR_CAPTURE = Sample(
    "03/19/16 13:37:12 SN=0000093112 SPO2=---% BPM=---% DESAT=-- PIDELTA=+-- ALARM=0000 "
    "EXC=000001",
    capture("Masimo Rad-8 in ASCII 1 mode, logged by the authors of masimo-datacapture",
            _MASIMO_CAPTURE, _MASIMO_LICENCE,
            changed="the comment wraps the line after DESAT=--: joined with one space"),
)

# A colour-screen Radical-7 with Rainbow tokens, no serial number shown (comment above
# _parse_rad7_color_serial_1). EXC 0000C00: SET mode (800) and low signal IQ (400).
MASIMO_RADICAL7_COLOR_CAPTURE = Sample(
    "03/17/16 19:19:36 SN=---------- SPO2=098% BPM=123 PI=00.55 SPCO=--% SPMET=--.-% "
    "SPHB=--.- SPOC=-- RESVD=--- DESAT=-- PIDELTA=+-- PVI=--- ALARM=000000 EXC=0000C00 "
    "EXC1=00000000",
    capture("Masimo Radical-7 (colour screen) in ASCII 1 mode, logged by the authors of "
            "masimo-datacapture", _MASIMO_CAPTURE, _MASIMO_LICENCE,
            changed="the comment wraps the line twice: joined with one space"),
)

# The Radical-7 (mono screen) example of Masimo's service manual, as quoted in the same
# file (comment above _parse_rad_7_blue_serial_1, which names the manual's address).
MASIMO_RADICAL7_MANUAL = Sample(
    "05/15/07 08:12:21 SN=0000070986 SPO2=---% BPM=--- PI=--.--% SPCO=--.-% SPMET=--.-% "
    "DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000000",
    vendor_doc("Masimo Radical-7 service manual rev. A, serial output example, as quoted in "
               "masimo-datacapture", _MASIMO_CAPTURE, _MASIMO_LICENCE,
               changed="the comment wraps the line twice: joined with one space"),
)

# A Rad-8 read through an RS-232-to-Wi-Fi adapter, from the log kept in a comment of
# NellcorN560Seriell's reader (first of six consecutive lines). EXC 000800: SET mode only.
MASIMO_RAD8_CAPTURE = Sample(
    "02/24/18 04:48:53 SN=0000145838 SPO2=097% BPM=080 PI=04.96% SPCO=--.-% SPMET=--.-% "
    "DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800",
    capture("Masimo Rad-8, logged in a comment of NellcorN560Seriell (AsixReader.java)", _N560,
            _N560_LICENCE),
)

# --- Nellcor N-560 trend output --------------------------------------------------------------
# From the same file: an N-560 read through the adapter, lines logged with a prefix
# "-->line from ASIX: " (removed here). Padding kept as published.

NELLCOR_N560_HEADER_CAPTURE = Sample(
    "N-560    VERSION 1.61.00    CRC:XXXX  SpO2 Limit: 95-100%    PR Limit: 59-148BPM",
    capture("Nellcor N-560 header line, logged in NellcorN560Seriell", _N560, _N560_LICENCE,
            changed="the log prefix '-->line from ASIX: ' removed"),
)

NELLCOR_N560_MODE_CAPTURE = Sample(
    "                             ADULT           25SAT-S ",
    capture("Nellcor N-560 patient-mode line, logged in NellcorN560Seriell", _N560, _N560_LICENCE,
            changed="the log prefix '-->line from ASIX: ' removed"),
)

NELLCOR_N560_COLUMNS_CAPTURE = Sample(
    "TIME                 %SpO2   BPM     PA     Status",
    capture("Nellcor N-560 column line, logged in NellcorN560Seriell", _N560, _N560_LICENCE,
            changed="the log prefix '-->line from ASIX: ' removed"),
)

# A data row with motion (MO) and the audible alarm off (AO).
NELLCOR_N560_ROW_CAPTURE = Sample(
    "07-Jan-04 11:24:54   100     102      36    MO             AO",
    capture("Nellcor N-560 data row, logged in NellcorN560Seriell", _N560, _N560_LICENCE,
            changed="the log prefix '-->line from ASIX: ' removed"),
)
