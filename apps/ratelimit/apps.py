from django.apps import AppConfig


class RateLimitConfig(AppConfig):
    name = "apps.ratelimit"
    label = "bulwark_ratelimit"
    verbose_name = "Rate limiting"
