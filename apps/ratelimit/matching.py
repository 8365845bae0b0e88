"""The compiled policy matcher of one tenant (`snapshot.py` serves it from an in-process snapshot)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from django.urls import URLPattern, URLResolver, get_resolver

from apps.core.patterns import PatternError, compile_pattern
from apps.ratelimit.algorithms import Limit
from apps.ratelimit.conf import ratelimit_settings
from apps.ratelimit.models import PERIOD_S, RateLimitPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    id: int
    tenant_id: int
    name: str
    match_kind: str
    routes: frozenset[str]
    path_regex: object | None  # a compiled RE2 pattern (apps.core.patterns): linear-time search
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
        # Decision endpoints (the check API, breaker acquire/report) are other services' hot path: a
        # match-any policy is meant for the requests they decide about, not for asking. A policy that
        # names them (route, path) still applies.
        skip_any = route is not None and route in ratelimit_settings.DECISION_ROUTES
        return [
            p for p in self.policies
            if not (skip_any and p.match_kind == RateLimitPolicy.MatchKind.ANY)
            and p.matches(route=route, path=path, method=method, role=role)
        ]


EMPTY = PolicySet(None, (), {}, frozenset())


def compile_policy(policy: RateLimitPolicy) -> CompiledPolicy:
    period_s = PERIOD_S[policy.period]
    if policy.algorithm == RateLimitPolicy.Algorithm.GCRA:
        limit = Limit.gcra(rate=policy.rate, period_s=period_s, burst=policy.effective_burst)
    elif policy.algorithm == RateLimitPolicy.Algorithm.MOVING_WINDOW:
        limit = Limit.moving_window(rate=policy.rate, period_s=period_s)
    else:
        limit = Limit.sliding_window(rate=policy.rate, period_s=period_s)
    return CompiledPolicy(
        id=policy.pk,
        tenant_id=policy.tenant_id,
        name=policy.name,
        match_kind=policy.match_kind,
        routes=frozenset(policy.route_list) if policy.match_kind == RateLimitPolicy.MatchKind.ROUTE else frozenset(),
        path_regex=compile_pattern(policy.match_value) if policy.match_kind == RateLimitPolicy.MatchKind.PATH else None,
        methods=frozenset(policy.method_list),
        roles=frozenset(policy.role_list),
        key_kind=policy.key_kind,
        header_meta="HTTP_" + policy.key_header.upper().replace("-", "_") if policy.key_header else "",
        limit=limit,
        enforce=policy.mode == RateLimitPolicy.Mode.ENFORCE,
        fail_closed=policy.failure_mode == RateLimitPolicy.FailureMode.CLOSED,
        priority=policy.priority,
    )


def compile_usable(policy: RateLimitPolicy) -> CompiledPolicy | None:
    try:
        return compile_policy(policy)
    except PatternError as exc:
        # Stored before patterns were compiled with RE2 (or the length cap was lowered): the policy is
        # skipped and shown as broken in the API, instead of failing the tenant's whole snapshot.
        log.warning("rate-limit policy %s (tenant %s) is broken and not applied: %s", policy.pk, policy.tenant_id, exc)
        return None


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
