"""The caching policies of each tenant and the models they watch, compiled into in-process snapshots that
follow `CachePolicy`: every save and delete, from any door (admin, bulk admin delete, API, ORM, shell), bumps
the versions after commit, so every process recompiles within the snapshot interval."""
from __future__ import annotations

import logging
from collections.abc import Hashable
from operator import attrgetter

from django.db import DatabaseError, transaction
from django.http import HttpRequest

from apps.caching.compiled import TenantPolicies, compile_policy
from apps.caching.conf import caching_settings
from apps.caching.models import CachePolicy
from apps.core.patterns import PatternError
from apps.core.requests import anonymous_tenant, is_anonymous
from apps.core.snapshot import CompiledSnapshot
from apps.tenancy.selectors import active_tenant_id

WATCHES_KEY = "all"
log = logging.getLogger(__name__)


def _build(tenant_id: Hashable) -> TenantPolicies:
    policies = []
    for row in CachePolicy.objects.for_tenant(tenant_id).filter(enabled=True):
        try:
            policies.append(compile_policy(row))
        except PatternError as exc:
            # A pattern stored before RE2 was required: skip this policy (never cache by it), keep the rest.
            log.warning("cache policy %s (tenant %s) is broken and not applied: %s", row.pk, tenant_id, exc)
    # Route-name policies first: an exact route beats a broad path pattern.
    policies.sort(key=lambda p: (not p.route_name, p.name))
    return TenantPolicies(ordered=tuple(policies), by_name={p.name: p for p in policies})


def _build_watches(_key: Hashable) -> dict[str, list[tuple[int, int, tuple[str, ...]]]]:
    """model label (lower) -> [(tenant id, policy id, tag templates)] of every enabled policy that watches it."""
    watches: dict[str, list[tuple[int, int, tuple[str, ...]]]] = {}
    try:
        # In a savepoint: a save during `migrate`, before this table exists, must not break its transaction.
        with transaction.atomic():
            rows = list(CachePolicy.objects.filter(enabled=True).exclude(invalidate_on_models=[])
                        .values_list("tenant_id", "pk", "tags", "invalidate_on_models"))
    except DatabaseError:
        return watches
    for tenant_id, policy_id, tags, labels in rows:
        for label in labels:
            watches.setdefault(label.lower(), []).append((tenant_id, policy_id, tuple(tags)))
    return watches


policy_snapshot: CompiledSnapshot[TenantPolicies] = CompiledSnapshot("caching", _build)
policy_snapshot.follow(CachePolicy, key=attrgetter("tenant_id"))
watch_snapshot: CompiledSnapshot[dict] = CompiledSnapshot("caching-watches", _build_watches)
watch_snapshot.follow(CachePolicy, key=lambda policy: WATCHES_KEY)


def policies_for_request(request: HttpRequest) -> tuple[TenantPolicies | None, bool]:
    """The policies governing a request and whether it is anonymous (core's one test).

    A tenant's requests follow its own policies; anonymous ones those of `ANONYMOUS_TENANT`, as in the rate
    limiter (tenancy's slug-to-tenant snapshot); other requests without a tenant (a signed-in user with no
    membership) are never cached.
    """
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        return policy_snapshot.get(tenant.pk), False
    slug = anonymous_tenant(caching_settings)
    if not slug or not is_anonymous(request):
        return None, False
    tenant_id = active_tenant_id(slug=slug)
    return (None if tenant_id is None else policy_snapshot.get(tenant_id)), True
