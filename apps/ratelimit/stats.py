"""Per-policy, per-minute decision counts: counted in memory on the hot path, flushed in batches off it."""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from apps.core.batching import BatchedCounters
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.ratelimit.conf import ratelimit_settings
from apps.ratelimit.models import RateLimitPolicy, RateLimitStat

if TYPE_CHECKING:
    from apps.ratelimit.decision import PolicyDecision


def _flush_stats(batch: dict[Hashable, Counter]) -> None:
    try:
        write(batch)
    finally:
        if threading.current_thread().name.startswith("bulwark-flush-"):
            # The flush thread writes every few seconds; holding its connection in between would keep
            # a database session open per process for nothing (and block dropping a test database).
            connection.close()


def write(batch: dict[Hashable, Counter]) -> None:
    """Add a batch of {(tenant id, policy id, minute epoch): counts} to the per-minute rows (any process)."""
    policy_ids = {policy_id for _, policy_id, _ in batch}
    live = set(RateLimitPolicy.objects.filter(pk__in=policy_ids).values_list("pk", flat=True))
    for (tenant_id, policy_id, minute_s), counts in batch.items():
        if policy_id not in live:
            continue  # deleted since: its stats went with it
        minute = datetime.fromtimestamp(minute_s, tz=UTC)
        increments = {f: F(f) + counts[f] for f in ("allowed", "denied", "shadow_denied") if counts[f]}
        for _ in range(2):  # a concurrent first insert of the same minute makes the second try an update
            try:
                with transaction.atomic():
                    if RateLimitStat.objects.filter(policy_id=policy_id, minute=minute).update(**increments):
                        break
                    RateLimitStat.objects.create(
                        tenant_id=tenant_id, policy_id=policy_id, minute=minute,
                        allowed=counts["allowed"], denied=counts["denied"], shadow_denied=counts["shadow_denied"],
                    )
                    break
            except IntegrityError:
                continue


stats_counters = BatchedCounters(
    "ratelimit-stats", _flush_stats, interval_s=ratelimit_settings.STATS_FLUSH_INTERVAL_S
)


def count(decisions: Sequence[PolicyDecision], *, clock: Clock = SYSTEM_CLOCK) -> None:
    minute_s = int(clock.time()) // 60 * 60
    for d in decisions:
        field = "allowed" if d.outcome.allowed else ("denied" if d.policy.enforce else "shadow_denied")
        stats_counters.add((d.policy.tenant_id, d.policy.id, minute_s), field)


def flush() -> None:
    """Write what this process counted so far now (the admin's stats page, tests)."""
    stats_counters.flush_now()
