"""IHE PCD-01 ORU^R01 messages, one constant per gateway style (docs/protocols.md, section
HL7).

Every message is a :class:`~samples.provenance.Sample` marked ``synthetic``: none of these
was captured from a device or gateway (no public capture with a stated source and terms
was found). Each was modelled by its author on the IHE PCD Technical Framework's PCD-01
examples and on the field usage that the named vendor's published HL7 interface
specification describes for its gateway (which fields carry the device id, the bed, the
times, the units); identifiers, names, dates and values are made up. Segments are
separated by ``\\r`` as on the wire; the tests also send them with ``\\n`` and ``\\r\\n``.

Every observation time is within a few minutes before T0 = 1_800_000_000
(2027-01-15T08:00:00Z), the ManualClock start of tests/conftest.py, so that the core takes
them without moving the clock.
"""

from samples.provenance import Sample, synthetic

T0 = 1_800_000_000.0


def _msg(*segments: str, after: str, made_up: str = "identifiers, names, dates and values") -> Sample:
    return Sample("\r".join(segments) + "\r", synthetic(after, made_up))


# --- Philips IntelliVue, via an IntelliBridge Enterprise-style gateway --------------------
# Modelled on the IHE PCD-01 examples and Philips' published HL7 interface spec for
# IntelliVue data export, not a capture. HL7 2.6 with the IHE PCD-01 profile in MSH-21,
# charset 8859/1, times with a UTC offset (US Eastern here), the device hierarchy as
# MDS/VMD/channel rows (status X, no value) and the EUI-64 equipment id only on the MDS row
# (OBX-18), inherited by the rows below. Vitals have no OBX-14: their time is OBR-7. NIBP
# (code family 150021-150023) carries its own cuff-cycle time. Respiration (151562) is not
# a Chairside parameter: counted as an unknown code. Bed in PV1-3: "INF^^Bed03^General".
PHILIPS_INTELLIVUE = _msg(
    "MSH|^~\\&|IntelliBridge^0009FBFFFF9B42B3^EUI-64|Philips|CHAIRSIDE|INFUSION|"
    "20270115025957.102-0500||ORU^R01^ORU_R01|PIB0115025957102001|P|2.6|||NE|AL||8859/1|"
    "EN^English^ISO639||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
    "PID|1||MRN100234^^^General^MR||Doe^Jane^^^^^L||19680412|F",
    "PV1|1|O|INF^^Bed03^General||||||||||||||||V20270115001",
    "OBR|1|PIB0115025957102001^IntelliBridge^0009FBFFFF9B42B3^EUI-64|"
    "PIB0115025957102001^IntelliBridge^0009FBFFFF9B42B3^EUI-64|182777000^monitoring of patient^SCT|||"
    "20270115025955.250-0500",
    "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||"
    "0009FBFFFF9B42B3^^0009FBFFFF9B42B3^EUI-64",
    "OBX|2||70666^MDC_DEV_ECG_RESP_VMD^MDC|1.2.0.0|||||||X",
    "OBX|3||70739^MDC_DEV_CARD_RATE_CHAN^MDC|1.2.1.0|||||||X",
    "OBX|4|NM|147842^MDC_ECG_CARD_BEAT_RATE^MDC|1.2.1.1|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|50-120||||F",
    "OBX|5|NM|151562^MDC_RESP_RATE^MDC|1.2.2.1|16|264928^MDC_DIM_RESP_PER_MIN^MDC|8-30||||F",
    "OBX|6||69642^MDC_DEV_ANALY_SAT_O2_VMD^MDC|1.3.0.0|||||||X",
    "OBX|7|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|97|262688^MDC_DIM_PERCENT^MDC|90-100||||F",
    "OBX|8|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.2|71|264864^MDC_DIM_BEAT_PER_MIN^MDC|50-120||||F",
    "OBX|9||69854^MDC_DEV_METER_PRESS_BLD_VMD^MDC|1.4.0.0|||||||X",
    "OBX|10|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.4.1.1|118|266016^MDC_DIM_MMHG^MDC|90-160||||F|||"
    "20270115025612-0500",
    "OBX|11|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.4.1.2|76|266016^MDC_DIM_MMHG^MDC|50-90||||F|||"
    "20270115025612-0500",
    "OBX|12|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.4.1.3|90|266016^MDC_DIM_MMHG^MDC|60-110||||F|||"
    "20270115025612-0500",
    after="the IHE PCD Technical Framework vol. 2 (PCD-01 ORU^R01, MDS/VMD/channel rows) and "
          "Philips' published HL7 interface description of IntelliVue data export via IntelliBridge "
          "Enterprise",
)
PHILIPS_BED = "INF^^Bed03^General"
PHILIPS_EXPECTED = {  # parameter -> (value, time)
    "hr": (72.0, T0 - 4.75), "spo2": (97.0, T0 - 4.75), "pr": (71.0, T0 - 4.75),
    "nibp_sys": (118.0, T0 - 228), "nibp_dia": (76.0, T0 - 228), "nibp_map": (90.0, T0 - 228),
}


# --- Mindray BeneVision N-series, eGateway-style ------------------------------------------
# Modelled on the IHE PCD-01 examples and Mindray's published HL7 interface spec for its
# patient monitors and eGateway, not a capture. The monitor model and EUI-64 in MSH-3, no
# device-level rows, OBX-4 sub-ids ending in the metric's own MDC code (1.3.1.150456),
# empty OBX-11, OBX-14 on every value with a +0800 offset, and NIBP in the cuff code family
# (150301-150303). PV1-3 is sent empty ("^^^"): the chair comes from MSH-3. Temperature
# (150344) is not a Chairside parameter.
MINDRAY_BENEVISION = _msg(
    "MSH|^~\\&|BeneVision N17^00A037009A0012F4^EUI-64||||20270115155958+0800||ORU^R01^ORU_R01|"
    "20387|P|2.6|||AL|NE||UNICODE UTF-8",
    "PID|||^^^^PI||^^^^^^L|||||",
    "PV1||I|^^^",
    "OBR|1|20387^BeneVision N17^00A037009A0012F4^EUI-64|20387^BeneVision N17^00A037009A0012F4^EUI-64|"
    "182777000^monitoring of patient^SCT|||20270115155958+0800",
    "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.7.4.147842|78|264864^MDC_DIM_BEAT_PER_MIN^MDC||||||||"
    "20270115155957+0800",
    "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|98|262688^MDC_DIM_PERCENT^MDC||||||||"
    "20270115155957+0800",
    "OBX|3|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.149530|77|264864^MDC_DIM_BEAT_PER_MIN^MDC||||||||"
    "20270115155957+0800",
    "OBX|4|NM|150344^MDC_TEMP^MDC|1.13.1.150344|36.6|268192^MDC_DIM_DEGC^MDC||||||||20270115155957+0800",
    "OBX|5|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.1.9.150301|124|266016^MDC_DIM_MMHG^MDC||||||||"
    "20270115155730+0800",
    "OBX|6|NM|150302^MDC_PRESS_CUFF_DIA^MDC|1.1.9.150302|81|266016^MDC_DIM_MMHG^MDC||||||||"
    "20270115155730+0800",
    "OBX|7|NM|150303^MDC_PRESS_CUFF_MEAN^MDC|1.1.9.150303|95|266016^MDC_DIM_MMHG^MDC||||||||"
    "20270115155730+0800",
    after="the IHE PCD Technical Framework vol. 2 (PCD-01) and Mindray's published HL7 interface "
          "description of its patient monitors and eGateway",
)
MINDRAY_DEVICE = "00A037009A0012F4"
MINDRAY_EXPECTED = {
    "hr": (78.0, T0 - 3), "spo2": (98.0, T0 - 3), "pr": (77.0, T0 - 3),
    "nibp_sys": (124.0, T0 - 150), "nibp_dia": (81.0, T0 - 150), "nibp_map": (95.0, T0 - 150),
}


# --- GE CARESCAPE monitor, via a CARESCAPE Gateway-style interface ------------------------
# Modelled on the IHE PCD-01 examples and GE's published HL7 interface spec for the
# CARESCAPE Gateway, not a capture. Sending application "VSP" with the gateway's EUI-64,
# facility "GE Healthcare", the device hierarchy rows, OBX-11 "R" (unverified, as sent
# live), OBX-14 in UTC on every value and the monitor's equipment id with its unit label in
# OBX-18 of every value ("<EUI-64>^<label>"): the chair comes from OBX-18. NIBP in the
# 150021-150023 family, PR from the oximeter.
GE_CARESCAPE = _msg(
    "MSH|^~\\&|VSP^080019FFFE3A7C21^EUI-64|GE Healthcare|||20270115075958+0000||ORU^R01^ORU_R01|"
    "080019FFFE3A7C2120270115075958|P|2.6|||NE|AL||UNICODE UTF-8|||"
    "PCD_DEC_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
    "PID|||HED4711^^^PID^MR||ROE^RICHARD^^^^^L|||",
    "PV1||O|INFUSION^^CH12",
    "OBR|1|080019FFFE3A7C2120270115075958^VSP^080019FFFE3A7C21^EUI-64|"
    "080019FFFE3A7C2120270115075958^VSP^080019FFFE3A7C21^EUI-64|182777000^monitoring of patient^SCT|||"
    "20270115075958+0000",
    "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X",
    "OBX|2||69854^MDC_DEV_METER_PRESS_BLD_VMD^MDC|1.15.0.0|||||||X",
    "OBX|3||69855^MDC_DEV_METER_PRESS_BLD_CHAN^MDC|1.15.1.0|||||||X",
    "OBX|4|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.15.1.1|131|266016^MDC_DIM_MMHG^MDC|||||R|||"
    "20270115075500+0000||||080019FFFE3A9B10^CH12_GE",
    "OBX|5|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.15.1.2|84|266016^MDC_DIM_MMHG^MDC|||||R|||"
    "20270115075500+0000||||080019FFFE3A9B10^CH12_GE",
    "OBX|6|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.15.1.3|100|266016^MDC_DIM_MMHG^MDC|||||R|||"
    "20270115075500+0000||||080019FFFE3A9B10^CH12_GE",
    "OBX|7||69642^MDC_DEV_ANALY_SAT_O2_VMD^MDC|1.22.0.0|||||||X",
    "OBX|8|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.22.1.1|67|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||"
    "20270115075956+0000||||080019FFFE3A9B10^CH12_GE",
    "OBX|9|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.22.1.2|96|262688^MDC_DIM_PERCENT^MDC|||||R|||"
    "20270115075956+0000||||080019FFFE3A9B10^CH12_GE",
    "OBX|10|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|68|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||"
    "20270115075956+0000||||080019FFFE3A9B10^CH12_GE",
    after="the IHE PCD Technical Framework vol. 2 (PCD-01) and GE's published HL7 interface "
          "description of the CARESCAPE Gateway",
)
GE_EQUIPMENT = "080019FFFE3A9B10"
GE_EXPECTED = {
    "hr": (68.0, T0 - 4), "spo2": (96.0, T0 - 4), "pr": (67.0, T0 - 4),
    "nibp_sys": (131.0, T0 - 300), "nibp_dia": (84.0, T0 - 300), "nibp_map": (100.0, T0 - 300),
}


# --- Nihon Kohden Life Scope monitor, gateway-style ----------------------------------------
# Modelled on the IHE PCD-01 examples and Nihon Kohden's published HL7 interface spec for
# its monitoring gateway, not a capture. HL7 2.5; OBX-3 gives the MDC reference id only
# ("^MDC_PULS_OXIM_SAT_O2^MDC"), OBX-6 UCUM units ("%^%^UCUM", "/min", "mm[Hg]"), short
# sub-ids, and times without a UTC offset (taken as UTC by Chairside: the gateway must be
# set to send UTC). Vitals are timed by OBR-7, the NIBP cycle by OBX-14. An SpO2-derived
# pulse rate that could not be measured is sent with status X and no value.
NIHON_KOHDEN = _msg(
    "MSH|^~\\&|NK_GATEWAY^NKGW01^L|NIHON KOHDEN|CHAIRSIDE||20270115075959||ORU^R01|"
    "NK000000004711|P|2.5|||AL|NE",
    "PID|||77001234^^^^MR||KOHDEN^TARO",
    "PV1||O|INF^CHR^12",
    "OBR|1||NK000000004711|182777000^monitoring of patient^SCT|||20270115075958",
    "OBX|1|NM|^MDC_ECG_HEART_RATE^MDC|1.1|64|/min^/min^UCUM|||||F",
    "OBX|2|NM|^MDC_PULS_OXIM_SAT_O2^MDC|2.1|99|%^%^UCUM|||||F",
    "OBX|3|NM|^MDC_PULS_OXIM_PULS_RATE^MDC|2.2||/min^/min^UCUM|||||X",
    "OBX|4|NM|^MDC_PRESS_CUFF_SYS^MDC|3.1|112|mm[Hg]^mm[Hg]^UCUM|||||F|||20270115075400",
    "OBX|5|NM|^MDC_PRESS_CUFF_DIA^MDC|3.2|70|mm[Hg]^mm[Hg]^UCUM|||||F|||20270115075400",
    "OBX|6|NM|^MDC_PRESS_CUFF_MEAN^MDC|3.3|84|mm[Hg]^mm[Hg]^UCUM|||||F|||20270115075400",
    after="the IHE PCD Technical Framework vol. 2 (PCD-01) and Nihon Kohden's published HL7 "
          "interface description of its monitoring gateway",
)
NIHON_KOHDEN_BED = "INF^CHR^12"
NIHON_KOHDEN_EXPECTED = {
    "hr": (64.0, T0 - 2), "spo2": (99.0, T0 - 2),
    "nibp_sys": (112.0, T0 - 360), "nibp_dia": (70.0, T0 - 360), "nibp_map": (84.0, T0 - 360),
}


# --- not ORU^R01 ---------------------------------------------------------------------------
# An IHE PCD-04 alarm report (ORU^R40), which Chairside does not take: answered AR.
PCD04_ALARM = _msg(
    "MSH|^~\\&|VSP^080019FFFE3A7C21^EUI-64|GE Healthcare|||20270115075958+0000||ORU^R40^ORU_R40|"
    "ALM0001|P|2.6|||AL|NE||UNICODE UTF-8",
    "PID|||HED4711^^^PID^MR||ROE^RICHARD^^^^^L|||",
    "PV1||O|INFUSION^^CH12",
    "OBR|1|ALM0001^VSP^080019FFFE3A7C21^EUI-64|ALM0001^VSP^080019FFFE3A7C21^EUI-64|"
    "196616^MDC_EVT_ALARM^MDC|||20270115075958+0000",
    after="the IHE PCD Technical Framework vol. 2 (PCD-04 ORU^R40 alarm report), headers as "
          "GE_CARESCAPE",
)

# An ADT^A01 admission, as a hospital interface engine would send to the wrong port.
ADT_A01 = _msg(
    "MSH|^~\\&|ADT1|HOSPITAL|CHAIRSIDE||20270115075958||ADT^A01^ADT_A01|ADT000123|P|2.5",
    "EVN|A01|20270115075958",
    "PID|||77001234^^^^MR||KOHDEN^TARO",
    "PV1||O|INF^CHR^12",
    after="HL7 v2.5 chapter 3 (ADT^A01), as an interface engine would send it to the wrong port",
)
