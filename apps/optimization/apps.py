from django.apps import AppConfig


class OptimizationConfig(AppConfig):
    name = "apps.optimization"
    label = "bulwark_optimization"
    verbose_name = "Optimization"

    def ready(self) -> None:
        from apps.optimization.conf import optimization_settings

        optimization_settings.validate()
        if optimization_settings.ENABLED:
            from apps.optimization import collector

            collector.install()
