"""The compiled policy matcher of one tenant (`snapshot.py` serves it from an in-process snapshot)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.urls import URLPattern, URLResolver, get_resolver

from apps.ratelimit.algorithms import Limit
from apps.ratelimit.models import PERIOD_S, RateLimitPolicy


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    id: int
    tenant_id: int
    name: str
    match_kind: str
    routes: frozenset[str]
    path_regex: re.Pattern | None
    methods: frozenset[str]  # empty: every method
    roles: frozenset[str]  # empty: every role
    key_kind: str
    header_meta: str  # request.META name of the key header
    limit: Limit
    enforce: bool
    fail_closed: bool
    priority: int

    def matches(self, *, route: str | None, path: str, method: str, role: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.roles and role not in self.roles:
            return False
        kind = self.match_kind
        if kind == RateLimitPolicy.MatchKind.ANY:
            return True
        if kind == RateLimitPolicy.MatchKind.ROUTE:
            return route in self.routes
        if kind == RateLimitPolicy.MatchKind.PATH:
            return self.path_regex.search(path) is not None
        return False  # NAMED: only where a caller names it


@dataclass(frozen=True, slots=True)
class PolicySet:
    """The enabled policies of one tenant, compiled; `disabled_names` lets callers tell 'off' from 'unknown'."""

    tenant_id: int | None
    policies: tuple[CompiledPolicy, ...]
    by_name: dict[str, CompiledPolicy]
    disabled_names: frozenset[str]

    def matching(self, *, route: str | None, path: str, method: str, role: str) -> list[CompiledPolicy]:
        return [p for p in self.policies if p.matches(route=route, path=path, method=method, role=role)]


EMPTY = PolicySet(None, (), {}, frozenset())


def compile_policy(policy: RateLimitPolicy) -> CompiledPolicy:
    period_s = PERIOD_S[policy.period]
    if policy.algorithm == RateLimitPolicy.Algorithm.GCRA:
        limit = Limit.gcra(rate=policy.rate, period_s=period_s, burst=policy.effective_burst)
    else:
        limit = Limit.sliding_window(rate=policy.rate, period_s=period_s)
    return CompiledPolicy(
        id=policy.pk,
        tenant_id=policy.tenant_id,
        name=policy.name,
        match_kind=policy.match_kind,
        routes=frozenset(policy.route_list) if policy.match_kind == RateLimitPolicy.MatchKind.ROUTE else frozenset(),
        path_regex=re.compile(policy.match_value) if policy.match_kind == RateLimitPolicy.MatchKind.PATH else None,
        methods=frozenset(policy.method_list),
        roles=frozenset(policy.role_list),
        key_kind=policy.key_kind,
        header_meta="HTTP_" + policy.key_header.upper().replace("-", "_") if policy.key_header else "",
        limit=limit,
        enforce=policy.mode == RateLimitPolicy.Mode.ENFORCE,
        fail_closed=policy.failure_mode == RateLimitPolicy.FailureMode.CLOSED,
        priority=policy.priority,
    )


def _walk_names(patterns, namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk_names(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}"


@lru_cache(maxsize=4)
def _route_names(urlconf: str | None) -> frozenset[str]:
    return frozenset(_walk_names(get_resolver(urlconf).url_patterns))


def known_route_names() -> frozenset[str]:
    """Every URL name of the project as `request.resolver_match.view_name` spells it (e.g. admin:login)."""
    from django.conf import settings

    return _route_names(settings.ROOT_URLCONF)
