"""The rate-limit policies of each tenant, compiled into an in-process snapshot that follows the model.

Every save and delete of a `RateLimitPolicy`, from any door (admin, bulk admin delete, API, fixtures, ORM,
shell), bumps its tenant's version after commit, so every process recompiles within the snapshot interval.
"""
from __future__ import annotations

from collections.abc import Hashable
from operator import attrgetter

from apps.core.snapshot import CompiledSnapshot
from apps.ratelimit.matching import EMPTY, PolicySet, compile_usable
from apps.ratelimit.models import RateLimitPolicy
from apps.tenancy.selectors import active_tenant_id


def _build(tenant_id: Hashable) -> PolicySet:
    rows = list(RateLimitPolicy.objects.for_tenant(tenant_id).order_by("priority", "name"))
    enabled = [c for c in (compile_usable(p) for p in rows if p.enabled) if c is not None]
    return PolicySet(
        tenant_id=tenant_id,
        policies=tuple(p for p in enabled if p.match_kind != RateLimitPolicy.MatchKind.NAMED),
        by_name={p.name: p for p in enabled},
        disabled_names=frozenset(p.name for p in rows if not p.enabled),
    )


policy_snapshot: CompiledSnapshot[PolicySet] = CompiledSnapshot("ratelimit", _build)
policy_snapshot.follow(RateLimitPolicy, key=attrgetter("tenant_id"))


def policies_for_tenant(tenant_id: int) -> PolicySet:
    return policy_snapshot.get(tenant_id)


def policies_for_anonymous(slug: str) -> PolicySet:
    """The policies governing requests without a tenant: those of the tenant named by ANONYMOUS_TENANT."""
    tenant_id = active_tenant_id(slug=slug)
    return EMPTY if tenant_id is None else policy_snapshot.get(tenant_id)
