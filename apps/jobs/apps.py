from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "bulwark_jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from apps.jobs import checks, registry  # noqa: F401 - checks registers the startup refusals

        registry.discover()
