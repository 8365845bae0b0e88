"""The rate-limit writes: policies (the snapshot follows the model, so no invalidation here), resetting a
key's counter, and stats retention. Decisions live in `decision.py`, counting in `stats.py`."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from apps.audit.services import record
from apps.core.context import Actor
from apps.core.errors import ApplicationError
from apps.core.services import model_create, model_delete, model_update
from apps.core.store import StoreUnavailable
from apps.ratelimit.backends import get_backend
from apps.ratelimit.backends.base import RateLimitBackend
from apps.ratelimit.keys import state_key
from apps.ratelimit.models import RateLimitPolicy, RateLimitStat
from apps.tenancy.models import Tenant


@transaction.atomic
def policy_create(*, tenant: Tenant, data: dict[str, Any]) -> RateLimitPolicy:
    return model_create(model=RateLimitPolicy, data=data, tenant=tenant)


@transaction.atomic
def policy_update(*, policy: RateLimitPolicy, data: dict[str, Any]) -> RateLimitPolicy:
    return model_update(instance=policy, data=data)


@transaction.atomic
def policy_delete(*, policy: RateLimitPolicy) -> None:
    model_delete(instance=policy)


@transaction.atomic
def counter_reset(
    *, policy: RateLimitPolicy, key: str, actor: Actor | None = None, backend: RateLimitBackend | None = None
) -> bool:
    """Forget one key's state under a policy (a client locked out by mistake); audited. True if it existed."""
    backend = backend or get_backend()
    try:
        existed = backend.reset(
            state_key(tenant_id=policy.tenant_id, policy_id=policy.pk, algorithm=policy.algorithm, key=key)
        )
    except StoreUnavailable as exc:
        raise ApplicationError(
            "The rate-limit store is unreachable; try again.", code="store_unavailable", status=503
        ) from exc
    record(action="ratelimit.reset_key", obj=policy, actor=actor, changes={"key": key, "existed": existed})
    return existed


@transaction.atomic
def stats_purge(*, tenant: Tenant, older_than: datetime, actor: Actor | None = None) -> int:
    """Delete the tenant's per-minute stats of minutes before `older_than`; one audit event says how many."""
    deleted, _ = RateLimitStat.objects.for_tenant(tenant).filter(minute__lt=older_than).delete()
    record(action="ratelimit.stats_retention", tenant=tenant, actor=actor, object_type="bulwark_ratelimit.ratelimitstat",
           changes={"older_than": older_than.isoformat(), "deleted": deleted})
    return deleted
