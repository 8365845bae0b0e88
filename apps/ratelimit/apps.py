"""App config: the policy snapshot follows RateLimitPolicy (imported here so every process registers it)."""
from django.apps import AppConfig


class RateLimitConfig(AppConfig):
    name = "apps.ratelimit"
    label = "bulwark_ratelimit"
    verbose_name = "Rate limiting"
    demo = "apps.ratelimit.demo.seed"  # seed_demo's hook: seed(tenant=..., stdout=...)

    def ready(self) -> None:
        from apps.ratelimit import snapshot  # noqa: F401  (follows RateLimitPolicy saves and deletes)
        from apps.ratelimit.conf import ratelimit_settings

        ratelimit_settings.validate()
