from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "bulwark_jobs"
    verbose_name = "Jobs"
