from django.apps import AppConfig


class CachingConfig(AppConfig):
    name = "apps.caching"
    label = "bulwark_caching"
    verbose_name = "Caching"
