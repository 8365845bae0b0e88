from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "bulwark_monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from apps.core import stats
        from apps.monitoring import conf, recorder, sampler

        conf.monitoring_settings.validate()
        recorder.install()
        # Every web and worker process reports its RSS and RSS change at each flush (the "memory delta"),
        # and offers its host's sample slot (one sample per host every SAMPLE_EVERY_S).
        stats.register("monitoring.process", sampler.ProcessSink(), start=False)
        stats.register("monitoring.host_sample", sampler.HostSampler(), start=False)
        # Web processes start the flusher in the monitoring middleware; django-q2 workers here.
        post_spawn.connect(worker_started, dispatch_uid="bulwark-monitoring-worker-started")


def worker_started(sender=None, **kwargs) -> None:
    from apps.core import stats

    stats.pipeline.ensure_started()
