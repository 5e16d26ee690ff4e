"""NEWS2 band edges: each boundary value of the table, on both sides."""

import pytest

from monitor.news2 import NOT_MEASURED, news2, score_pulse, score_spo2, score_systolic


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
