from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "bulwark_monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from apps.core import stats
        from apps.monitoring import conf, recorder, sampler

        conf.monitoring_settings.validate()
        recorder.install()
        # Every web and worker process reports its RSS and RSS change at each flush (the "memory delta").
        stats.register("monitoring.process", sampler.ProcessSink(), start=False)
