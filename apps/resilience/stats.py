"""The dependency scorecard: per-minute counts and core's mergeable log-bucket latency histogram (1% relative error),
and the sink that writes it with the breakers' transitions through core's one stats pipeline."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import transaction

from apps.core import histogram
from apps.core.stats import BufferedSink


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
            row.histogram = {str(b): n for b, n in histogram.merge([row.histogram, stats.histogram]).items()}
            row.save()


class BreakerHistorySink(BufferedSink):
    """Drains a breaker registry's transitions and per-minute scorecards to the database in one transaction
    (sink `resilience.breakers`): a failed write puts both back for the next flush, nothing is written twice."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def take(self):
        registry = self.registry
        with registry._lock:
            events, registry.events = registry.events, []
        drained = [(breaker, minutes) for breaker in list(registry.breakers.values())
                   if (minutes := breaker.drain_minutes())]
        return (events, drained) if events or drained else None

    def write(self, batch, now: float) -> None:
        from apps.resilience.models import BreakerEvent
        from apps.tenancy.models import Tenant

        events, drained = batch
        tenant_ids = {tenant_id for tenant_id, *_ in events} | {breaker.tenant_id for breaker, _ in drained}
        tenant_ids.discard(0)  # breakers used outside any tenant have no history rows
        if not tenant_ids:
            return
        with transaction.atomic():
            # A tenant deleted since its breaker counted takes its history with it, not failing every flush.
            existing = set(Tenant.objects.filter(pk__in=tenant_ids).values_list("pk", flat=True))
            BreakerEvent.objects.bulk_create([
                BreakerEvent(
                    tenant_id=tenant_id, name=name, at=datetime.fromtimestamp(at, tz=UTC),
                    from_state=t.from_state, to_state=t.to_state, reason=t.reason[:200],
                    calls=t.figures.calls, failures=t.figures.failures, slow_calls=t.figures.slow,
                    failure_rate_pct=t.figures.failure_rate_pct, slow_rate_pct=t.figures.slow_rate_pct,
                    consecutive_failures=t.figures.consecutive,
                )
                for tenant_id, name, t, at in events if tenant_id in existing
            ])
            write_minutes([
                (breaker.tenant_id, breaker.name, minute, stats)
                for breaker, minutes in drained if breaker.tenant_id in existing for minute, stats in minutes
            ])

    def restore(self, batch) -> None:
        events, drained = batch
        with self.registry._lock:
            self.registry.events[:0] = events
        for breaker, minutes in drained:
            breaker.restore_minutes(minutes)
