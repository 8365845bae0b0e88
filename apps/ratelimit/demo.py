"""Demo rate-limit policies: the defaults the issue asks for, created once per tenant (idempotent)."""
from __future__ import annotations

from apps.ratelimit.models import RateLimitPolicy

DEMO_POLICIES = [
    {
        "name": "default", "description": "Every request: 100 per minute per user (per IP when anonymous).",
        "match_kind": "any", "roles": "anonymous,viewer,operator", "key_kind": "user",
        "rate": 100, "period": "minute", "priority": 100,
    },
    {
        "name": "admin-role", "description": "Admins get more headroom: 200 per minute per user.",
        "match_kind": "any", "roles": "admin", "key_kind": "user", "rate": 200, "period": "minute", "priority": 100,
    },
    {
        "name": "login", "description": "Password guessing: 10 login attempts per minute per IP.",
        "match_kind": "route", "match_value": "admin:login,rest_framework:login", "methods": "POST",
        "key_kind": "ip", "rate": 10, "period": "minute", "failure_mode": "closed", "priority": 10,
    },
    {
        "name": "expensive", "description": "Expensive operations (named by views and the check API): 5 per minute.",
        "match_kind": "named", "key_kind": "user", "rate": 5, "period": "minute", "priority": 50,
    },
]


def seed(*, tenant, stdout=None) -> None:
    from apps.ratelimit.services import policy_create

    created = 0
    for data in DEMO_POLICIES:
        if not RateLimitPolicy.objects.for_tenant(tenant).filter(name=data["name"]).exists():
            policy_create(tenant=tenant, data=data)
            created += 1
    if stdout is not None and created:
        stdout.write(f"  ratelimit: {created} demo policies for {tenant.slug}")
