from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "apps.alerting"
    label = "bulwark_alerting"
    verbose_name = "Alerting"

    def ready(self) -> None:
        from apps.alerting.conf import alerting_settings

        alerting_settings.validate()

        from apps.alerting import metrics

        metrics.register_all()
