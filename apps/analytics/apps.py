from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "apps.analytics"
    label = "bulwark_analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from apps.analytics.conf import analytics_settings

        analytics_settings.validate()

        from apps.analytics import monitoring_series

        monitoring_series.register()

        from apps.analytics import alert_metrics

        alert_metrics.register_kinds()
