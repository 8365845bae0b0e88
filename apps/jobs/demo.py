"""Demo data of the jobs app: a tenant schedule and a first ping run, so the console is not empty. Idempotent."""
from __future__ import annotations

from apps.core.context import Actor
from apps.jobs.models import JobSchedule
from apps.jobs.services import job_submit, schedule_save


def seed(*, tenant, stdout) -> None:
    if not JobSchedule.objects.for_tenant(tenant).filter(name="worker ping").exists():
        schedule_save(schedule=JobSchedule(tenant=tenant, name="worker ping", type="jobs.ping", interval_min=15))
    job_submit(job_type="jobs.ping", params={}, tenant=tenant, submitted_by=Actor.system("seed_demo"),
               idempotency_key="demo:first-ping")
    stdout.write(f"  jobs: schedule 'worker ping' (every 15 min) and a first ping run for {tenant.slug}")
