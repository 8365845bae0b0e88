"""App config: policy changes from any door (admin, API, fixtures, shell) invalidate the compiled snapshot."""
from django.apps import AppConfig


class RateLimitConfig(AppConfig):
    name = "apps.ratelimit"
    label = "bulwark_ratelimit"
    verbose_name = "Rate limiting"
    demo = "apps.ratelimit.demo.seed"  # seed_demo's hook: seed(tenant=..., stdout=...)

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.ratelimit import matching
        from apps.ratelimit.conf import ratelimit_settings
        from apps.ratelimit.models import RateLimitPolicy

        ratelimit_settings.validate()
        post_save.connect(matching.on_policy_change, sender=RateLimitPolicy, dispatch_uid="ratelimit-policy-saved")
        post_delete.connect(matching.on_policy_change, sender=RateLimitPolicy, dispatch_uid="ratelimit-policy-deleted")
