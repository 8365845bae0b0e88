"""Demo cache policies (from the brief): dashboard 60 s, security 120 s, network 180 s. Idempotent."""
from __future__ import annotations

from apps.caching import services
from apps.caching.models import CachePolicy

DEMO_POLICIES = [
    {"name": "dashboard", "path_pattern": r"^/api/v1/dashboard/", "ttl_s": 60, "stale_while_revalidate_s": 30,
     "stale_if_error_s": 300, "vary_on": "role", "tags": ["dashboard"], "warm_urls": ["/api/v1/dashboard/"]},
    {"name": "security", "path_pattern": r"^/api/v1/security/", "ttl_s": 120, "stale_if_error_s": 600,
     "vary_on": "role", "tags": ["security"]},
    {"name": "network", "path_pattern": r"^/api/v1/network/", "ttl_s": 180, "stale_while_revalidate_s": 60,
     "vary_on": "tenant", "tags": ["network", "network:{pk}"], "adaptive_ttl": True, "ttl_min_s": 60,
     "ttl_max_s": 900},
]


def seed(*, tenant, stdout) -> None:
    for fields in DEMO_POLICIES:
        policy = CachePolicy.objects.for_tenant(tenant).filter(name=fields["name"]).first()
        if policy is None:
            services.policy_create(tenant=tenant, data=fields)
        else:
            services.policy_update(policy=policy, data=fields)
    stdout.write(f"caching: {len(DEMO_POLICIES)} cache policies for {tenant.slug}")
