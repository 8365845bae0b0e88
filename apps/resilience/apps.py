from django.apps import AppConfig


class ResilienceConfig(AppConfig):
    name = "apps.resilience"
    label = "bulwark_resilience"
    verbose_name = "Resilience"
    demo = "apps.resilience.demo.seed"  # seed_demo's hook: seed(tenant=..., stdout=...)
