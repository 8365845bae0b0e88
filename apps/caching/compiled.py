"""The compiled policies of a tenant, read on the hot path from an in-process snapshot, never per request."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.http import HttpRequest

from apps.caching.conf import caching_settings
from apps.core.patterns import PatternError, compile_pattern
from apps.core.snapshot import CompiledSnapshot
from apps.tenancy.selectors import active_tenant_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompiledPolicy:
    id: int
    tenant_id: int
    name: str
    route_name: str
    path_regex: object | None  # a compiled RE2 pattern (apps.core.patterns): linear-time search
    methods: frozenset[str]
    ttl_s: int
    vary_on: str
    vary_headers: tuple[str, ...]
    ignored_query_params: tuple[str, ...]
    swr_s: int
    sie_s: int
    tags: tuple[str, ...]
    statuses: frozenset[int]
    max_body_bytes: int
    adaptive_ttl: bool
    ttl_min_s: int
    ttl_max_s: int
    early_refresh_beta: float

    def applies_to(self, *, anonymous: bool) -> bool:
        """An "anonymous" policy caches only requests without a principal; signed-in requests bypass it."""
        return anonymous or self.vary_on != "anonymous"

    def matches(self, *, method: str, path: str, route_names: tuple[str, ...], anonymous: bool = False) -> bool:
        if method not in self.methods or not self.applies_to(anonymous=anonymous):
            return False
        if self.route_name and self.route_name in route_names:
            return True
        return self.path_regex is not None and self.path_regex.search(path) is not None


@dataclass(frozen=True)
class TenantPolicies:
    ordered: tuple[CompiledPolicy, ...]
    by_name: dict[str, CompiledPolicy]

    def match(self, *, method: str, path: str, route_names: tuple[str, ...],
              anonymous: bool = False) -> CompiledPolicy | None:
        for policy in self.ordered:
            if policy.matches(method=method, path=path, route_names=route_names, anonymous=anonymous):
                return policy
        return None


def compile_policy(policy) -> CompiledPolicy:
    return CompiledPolicy(
        id=policy.pk,
        tenant_id=policy.tenant_id,
        name=policy.name,
        route_name=policy.route_name,
        path_regex=compile_pattern(policy.path_pattern) if policy.path_pattern else None,
        methods=frozenset(policy.methods or ("GET", "HEAD")),
        ttl_s=policy.ttl_s,
        vary_on=policy.vary_on,
        vary_headers=tuple(h.lower() for h in policy.vary_headers),
        ignored_query_params=tuple(policy.ignored_query_params),
        swr_s=policy.stale_while_revalidate_s,
        sie_s=policy.stale_if_error_s,
        tags=tuple(policy.tags),
        statuses=frozenset(policy.statuses),
        max_body_bytes=policy.max_body_bytes,
        adaptive_ttl=policy.adaptive_ttl,
        ttl_min_s=policy.ttl_min_s,
        ttl_max_s=policy.ttl_max_s,
        early_refresh_beta=policy.early_refresh_beta,
    )


def _build(tenant_id) -> TenantPolicies:
    from apps.caching.models import CachePolicy

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


policy_snapshot: CompiledSnapshot[TenantPolicies] = CompiledSnapshot("caching", _build)


def is_anonymous(request: HttpRequest) -> bool:
    """No principal at all: no tenant, nobody signed in, and no Authorization header that a view's own
    authentication (DRF Basic, a custom scheme) could still turn into a user after the lookup."""
    return (
        getattr(request, "tenant", None) is None
        and getattr(getattr(request, "actor", None), "kind", "anonymous") == "anonymous"
        and "HTTP_AUTHORIZATION" not in request.META
    )


def policies_for_request(request: HttpRequest) -> tuple[TenantPolicies | None, bool]:
    """The policies governing a request and whether it is anonymous.

    A tenant's requests follow its own policies; anonymous ones those of `ANONYMOUS_TENANT`, as in the rate
    limiter (tenancy's slug-to-tenant snapshot); other requests without a tenant (a signed-in user with no
    membership) are never cached.
    """
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        return policy_snapshot.get(tenant.pk), False
    slug = caching_settings.ANONYMOUS_TENANT
    if not slug or not is_anonymous(request):
        return None, False
    tenant_id = active_tenant_id(slug=slug)
    return (None if tenant_id is None else policy_snapshot.get(tenant_id)), True


def _build_watches(_key) -> dict[str, list[tuple[int, int, tuple[str, ...]]]]:
    """model label (lower) -> [(tenant id, policy id, tag templates)] of every enabled policy that watches it."""
    from django.db import DatabaseError, transaction

    from apps.caching.models import CachePolicy

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


WATCHES_KEY = "all"
watch_snapshot: CompiledSnapshot[dict] = CompiledSnapshot("caching-watches", _build_watches)
