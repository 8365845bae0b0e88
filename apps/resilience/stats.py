"""The dependency scorecard: per-minute counts and a mergeable log-bucket latency histogram (2% relative error)."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from django.db import transaction

RELATIVE_ERROR = 0.02
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(GAMMA)
# Durations below this are put in its bucket: a log scale has no zero.
MIN_DURATION_MS = 0.001


_INV_LOG_GAMMA = 1 / _LOG_GAMMA


def bucket_of(duration_ms: float) -> int:
    """Bucket i holds (GAMMA**(i-1), GAMMA**i]."""
    return math.ceil(math.log(duration_ms if duration_ms > MIN_DURATION_MS else MIN_DURATION_MS) * _INV_LOG_GAMMA)


def bucket_value_ms(bucket: int) -> float:
    """The value that is within RELATIVE_ERROR of every duration in the bucket."""
    return 2 * GAMMA**bucket / (GAMMA + 1)


def quantile_ms(histogram: Mapping[int | str, int], q: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for bucket in sorted(histogram, key=int):
        seen += histogram[bucket]
        if seen > rank:
            return round(bucket_value_ms(int(bucket)), 3)
    return None


def merge_histograms(histograms: Iterable[Mapping[int | str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[str(bucket)] = merged.get(str(bucket), 0) + count
    return merged


class MinuteStats:
    """One breaker's figures for one minute in this process, added to under the breaker's lock (by
    `Breaker.record`, inline, because it runs on every call)."""

    __slots__ = ("calls", "failures", "ignored", "slow", "rejected", "duration_ms_sum", "cost_sum", "cost_calls",
                 "histogram")

    def __init__(self) -> None:
        self.calls = self.failures = self.ignored = self.slow = self.rejected = self.cost_calls = 0
        self.duration_ms_sum = self.cost_sum = 0.0
        self.histogram: dict[int, int] = {}

    def merge(self, other: MinuteStats) -> None:
        self.calls += other.calls
        self.failures += other.failures
        self.ignored += other.ignored
        self.slow += other.slow
        self.rejected += other.rejected
        self.duration_ms_sum += other.duration_ms_sum
        self.cost_sum += other.cost_sum
        self.cost_calls += other.cost_calls
        for bucket, count in other.histogram.items():
            self.histogram[bucket] = self.histogram.get(bucket, 0) + count


def write_minutes(rows: Iterable[tuple[int, str, int, MinuteStats]]) -> None:
    """Add (tenant id, dependency, minute epoch, stats) to the database rows, merging histograms."""
    from apps.resilience.models import DependencyMinute

    for tenant_id, name, minute, stats in rows:
        with transaction.atomic():
            row, _ = DependencyMinute.objects.select_for_update().get_or_create(
                tenant_id=tenant_id, name=name, minute=datetime.fromtimestamp(minute * 60, tz=UTC)
            )
            row.calls += stats.calls
            row.failures += stats.failures
            row.ignored += stats.ignored
            row.slow_calls += stats.slow
            row.rejected += stats.rejected
            row.duration_ms_sum += stats.duration_ms_sum
            row.cost_sum += stats.cost_sum
            row.cost_calls += stats.cost_calls
            row.histogram = merge_histograms([row.histogram, stats.histogram])
            row.save()
