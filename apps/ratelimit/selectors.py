"""Reads of rate-limit configuration and stats."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet, Sum
from django.utils import timezone

from apps.ratelimit.models import RateLimitPolicy, RateLimitStat
from apps.tenancy.models import Tenant


def policy_list(*, tenant: Tenant) -> QuerySet[RateLimitPolicy]:
    return RateLimitPolicy.objects.for_tenant(tenant).order_by("priority", "name")


def policy_stats(*, policy: RateLimitPolicy, minutes: int = 60, now: datetime | None = None) -> dict:
    """The policy's per-minute counts of the last `minutes` minutes (newest first) and their totals."""
    since = (now or timezone.now()).replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    rows = RateLimitStat.objects.for_tenant(policy.tenant_id).filter(policy=policy, minute__gte=since)
    totals = rows.aggregate(allowed=Sum("allowed"), denied=Sum("denied"), shadow_denied=Sum("shadow_denied"))
    return {
        "minutes": minutes,
        "totals": {name: value or 0 for name, value in totals.items()},
        "series": list(rows.order_by("-minute").values("minute", "allowed", "denied", "shadow_denied")),
    }
