from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "bulwark_monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from apps.monitoring import conf, recorder

        conf.monitoring_settings.validate()
        recorder.install()
