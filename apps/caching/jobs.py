"""Job types of caching: `cache.warm` fetches a policy's warm URLs through their views and stores them."""
from __future__ import annotations

from rest_framework import serializers

from apps.caching import services
from apps.caching.models import CachePolicy
from apps.core.api.serializers import StrictSerializer
from apps.jobs.registry import DoNotRetry, job_type


class WarmParams(StrictSerializer):
    policy = serializers.IntegerField(min_value=1, help_text="Id of the tenant's cache policy to warm.")


@job_type("cache.warm", params=WarmParams, timeout_s=300, max_attempts=3, queue="default")
def warm(ctx, params: dict) -> dict:
    """Warm one policy of the run's tenant, reporting progress per URL."""
    policy = CachePolicy.objects.for_tenant(ctx.tenant).filter(pk=params["policy"]).first()
    if policy is None:
        raise DoNotRetry(f"The tenant has no cache policy {params['policy']}.")
    return services.warm_policy(policy=policy, progress=ctx.progress)
