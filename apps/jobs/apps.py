from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "bulwark_jobs"
    verbose_name = "Jobs"
    demo = "apps.jobs.demo.seed"  # seed_demo's hook: seed(tenant=..., stdout=...)

    def ready(self) -> None:
        from django_q.signals import post_spawn, pre_execute

        from apps.jobs import checks, registry  # noqa: F401 - checks registers the startup refusals
        from apps.jobs.runner import remember_task_id, worker_started

        pre_execute.connect(remember_task_id, dispatch_uid="bulwark-jobs-task-id")
        post_spawn.connect(worker_started, dispatch_uid="bulwark-jobs-worker-started")
        registry.discover()
