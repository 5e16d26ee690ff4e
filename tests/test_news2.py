"""NEWS2 band edges: each boundary value of the table, on both sides."""

import pytest

from monitor.news2 import NOT_MEASURED, chart_value, news2, score_pulse, score_spo2, score_systolic


@pytest.mark.parametrize(("spo2", "points"), [
    (50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0),
])
def test_spo2_scale_1(spo2, points):
    assert score_spo2(spo2) == points


@pytest.mark.parametrize(("sys", "points"), [
    (40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3),
    (300, 3),
])
def test_systolic(sys, points):
    assert score_systolic(sys) == points


@pytest.mark.parametrize(("pulse", "points"), [
    (20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2),
    (130, 2), (131, 3), (300, 3),
])
def test_pulse(pulse, points):
    assert score_pulse(pulse) == points


def test_score_is_always_partial_and_names_what_is_missing():
    score = news2(spo2=97, systolic=None, pulse=72)
    assert score.partial and score.total == 0
    assert score.components == {"spo2": 0, "pulse": 0}
    assert score.missing == ("systolic",)
    assert score.not_measured == NOT_MEASURED
    assert score.response == "none"


@pytest.mark.parametrize(("values", "total", "response"), [
    ((95, 120, 95), 2, "low"),
    ((91, 120, 72), 3, "urgent"),  # a single 3
    ((93, 105, 100), 4, "low"),
    ((93, 100, 100), 5, "urgent"),
    ((91, 100, 115), 7, "emergency"),
])
def test_total_and_response(values, total, response):
    score = news2(*values)
    assert (score.total, score.response) == (total, response)
    assert score.as_dict()["partial"] is True


# --- the rounding rule (docs/news2.md): half up to the charted whole number -------------

SPO2_EDGES = ((91, 92), (93, 94), (95, 96))
SYS_EDGES = ((90, 91), (100, 101), (110, 111), (219, 220))
PULSE_EDGES = ((40, 41), (50, 51), (90, 91), (110, 111), (130, 131))


def _fractional_sides(edges, score):
    """For the edge between charted whole numbers a and a + 1: a + 0.4 and a + 0.49 score as
    a; a + 0.5 and a + 0.6 score as a + 1 (half up, whatever the parity of a)."""
    cases = []
    for low, high in edges:
        for frac in (0.4, 0.49):
            cases.append((low + frac, score(low)))
        for frac in (0.5, 0.6):
            cases.append((low + frac, score(high)))
        cases.append((low - 0.5, score(low)))  # e.g. 89.5 charts as 90
    return cases


@pytest.mark.parametrize(("value", "points"), _fractional_sides(SPO2_EDGES, score_spo2))
def test_spo2_fractional_edges(value, points):
    assert score_spo2(value) == points
    assert news2(value, None, None).components["spo2"] == points


@pytest.mark.parametrize(("value", "points"), _fractional_sides(SYS_EDGES, score_systolic))
def test_systolic_fractional_edges(value, points):
    assert score_systolic(value) == points
    assert news2(None, value, None).components["systolic"] == points


@pytest.mark.parametrize(("value", "points"), _fractional_sides(PULSE_EDGES, score_pulse))
def test_pulse_fractional_edges(value, points):
    assert score_pulse(value) == points
    assert news2(None, None, value).components["pulse"] == points


def test_half_up_not_half_to_even():
    # round() would take 90.5 to 90 (3 points) and 92.5 to 92: the chart takes them up
    assert chart_value(90.5) == 91 and chart_value(92.5) == 93 and chart_value(90.4) == 90
    assert score_systolic(90.5) == 2 and score_systolic(90.4) == 3
    assert score_systolic(100.5) == 1 and score_systolic(100.4) == 2
    assert score_spo2(91.5) == 2 and score_spo2(93.5) == 1 and score_spo2(95.5) == 0
    assert score_pulse(40.5) == 1 and score_pulse(130.5) == 3
    assert score_systolic(219.5) == 3 and score_systolic(219.4) == 0
