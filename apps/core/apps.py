from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "bulwark_core"
    verbose_name = "Bulwark core"
