"""The compiled policies of a tenant (`snapshot.py` serves them from an in-process snapshot, never per request)."""
from __future__ import annotations

from dataclasses import dataclass

from apps.core.patterns import compile_pattern


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
