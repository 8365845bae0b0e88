"""The log-bucket histogram: quantiles within 1 % of the exact ones, merges equal to one histogram of all."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core import histogram

durations = st.floats(min_value=histogram.MIN_MS * 1.0001, max_value=histogram.MAX_MS / 1.1,
                      allow_nan=False, allow_infinity=False)
quantiles = st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0])


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def build(values) -> dict[int, int]:
    h: dict[int, int] = {}
    for value in values:
        histogram.add(h, value)
    return h


@settings(max_examples=300, deadline=None)
@given(st.lists(durations, min_size=1, max_size=300), quantiles)
def test_every_quantile_is_within_one_percent_of_the_exact_one(values, q):
    answer = histogram.quantile_ms(build(values), q)
    truth = exact(values, q)
    assert abs(answer - truth) <= histogram.RELATIVE_ERROR * truth * (1 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(durations, max_size=100), min_size=1, max_size=6), quantiles)
def test_merging_parts_equals_the_histogram_of_everything(parts, q):
    merged = histogram.merge(build(part) for part in parts)
    whole = build([v for part in parts for v in part])
    assert merged == {b: n for b, n in whole.items() if n}
    everything = [v for part in parts for v in part]
    if everything:
        truth = exact(everything, q)
        assert abs(histogram.quantile_ms(merged, q) - truth) <= histogram.RELATIVE_ERROR * truth * (1 + 1e-9)


@given(st.lists(durations, min_size=1, max_size=200))
def test_the_wire_form_round_trips(values):
    h = build(values)
    wire = histogram.to_wire(h)
    assert wire["gamma"] == histogram.GAMMA
    assert len(wire["counts"]) == max(h) - min(h) + 1
    assert histogram.from_wire(wire) == h


def test_values_outside_the_range_are_clamped_not_lost():
    h = build([0.0, 1e-9, 1e12])
    assert sum(h.values()) == 3
    assert min(h) == histogram.MIN_BUCKET and max(h) == histogram.MAX_BUCKET


def test_an_empty_histogram_has_no_quantile():
    assert histogram.quantile_ms({}, 0.5) is None
