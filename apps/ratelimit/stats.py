"""Per-policy, per-minute decision counts: counted in memory on the hot path, flushed in batches off it by
core's one stats pipeline (sink `ratelimit.decisions`)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.core import stats as core_stats
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.ratelimit.conf import ratelimit_settings
from apps.ratelimit.models import RateLimitPolicy, RateLimitStat

if TYPE_CHECKING:
    from apps.ratelimit.decision import PolicyDecision


def write(batch: dict[Hashable, Counter], now: float | None = None) -> None:
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


SINK_NAME = "ratelimit.decisions"
stats_counters = core_stats.register(
    SINK_NAME, core_stats.CounterSink(write), start=False,
    interval_alias=(ratelimit_settings, "STATS_FLUSH_INTERVAL_S"),
)
_pipeline = core_stats.pipeline


def count(decisions: Sequence[PolicyDecision], *, clock: Clock = SYSTEM_CLOCK) -> None:
    if not _pipeline.running:  # the first count of this process starts its flusher
        _pipeline.ensure_started()
    minute_s = int(clock.time()) // 60 * 60
    for d in decisions:
        field = "allowed" if d.outcome.allowed else ("denied" if d.policy.enforce else "shadow_denied")
        stats_counters.add((d.policy.tenant_id, d.policy.id, minute_s), field)


def flush(*, clock: Clock = SYSTEM_CLOCK) -> None:
    """Write what this process counted so far now (the admin's stats page, the stats API, tests)."""
    stats_counters.flush(clock.time())
