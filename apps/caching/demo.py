"""Demo cache policies on real read endpoints of Bulwark's own API, so the demo shows hits. Idempotent.

They name routes, not paths, so they follow the URLs wherever they are mounted. Each lists what is the
same for every member of the tenant (`vary_on: tenant`) and is invalidated when the rows it lists change.
"""
from __future__ import annotations

from apps.caching import services
from apps.caching.models import CachePolicy

DEMO_POLICIES = [
    {"name": "cache-policies", "route_name": "v1:cache-policy-list", "ttl_s": 60, "stale_while_revalidate_s": 30,
     "vary_on": "tenant", "tags": ["cache-policies"], "invalidate_on_models": ["bulwark_caching.CachePolicy"],
     "warm_urls": ["/api/v1/caching/policies/"]},
    {"name": "rate-limit-policies", "route_name": "v1:ratelimit-policy-list", "ttl_s": 120,
     "stale_if_error_s": 600, "vary_on": "tenant", "tags": ["rate-limit-policies"],
     "invalidate_on_models": ["bulwark_ratelimit.RateLimitPolicy"]},
    {"name": "job-types", "route_name": "v1:job-types", "ttl_s": 300, "stale_while_revalidate_s": 60,
     "vary_on": "tenant", "tags": ["job-types"], "adaptive_ttl": True, "ttl_min_s": 60, "ttl_max_s": 900},
]
# Seeded by earlier versions for routes that never existed: removed so a re-seeded demo shows only real ones.
RETIRED_POLICIES = {"dashboard": r"^/api/v1/dashboard/", "security": r"^/api/v1/security/",
                    "network": r"^/api/v1/network/"}


def seed(*, tenant, stdout) -> None:
    for name, pattern in RETIRED_POLICIES.items():
        for policy in CachePolicy.objects.for_tenant(tenant).filter(name=name, path_pattern=pattern):
            services.policy_delete(policy=policy)
    for fields in DEMO_POLICIES:
        policy = CachePolicy.objects.for_tenant(tenant).filter(name=fields["name"]).first()
        if policy is None:
            services.policy_create(tenant=tenant, data=fields)
        else:
            services.policy_update(policy=policy, data=fields)
    stdout.write(f"caching: {len(DEMO_POLICIES)} cache policies for {tenant.slug} "
                 f"(GET /api/v1/caching/policies/ twice: the second answers Cache-Status: Bulwark; hit)")
