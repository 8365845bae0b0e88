"""Scorecard minutes stored with resilience's earlier 2 % buckets keep their values on core's 1 % histogram."""
from __future__ import annotations

import importlib
import math

import pytest

from apps.core import histogram

migration = importlib.import_module("apps.resilience.migrations.0004_scorecard_histograms_on_core_buckets")


@pytest.mark.parametrize("duration_ms", [0.5, 12.0, 250.0, 9_000.0])
def test_stored_two_percent_buckets_are_refiled_under_cores_one_percent_buckets(duration_ms):
    old_bucket = math.ceil(math.log(duration_ms) / math.log(migration.OLD_GAMMA))
    refiled = histogram.bucket_value_ms(migration._new_bucket(old_bucket))
    assert refiled == pytest.approx(duration_ms, rel=0.02 + histogram.RELATIVE_ERROR)
