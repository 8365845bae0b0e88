"""Register the job schedules with django-q2; safe to run on every start."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.jobs.services import schedules_sync_all


class Command(BaseCommand):
    help = "Create the declared job schedules and the jobs.reap sweep, and mirror every JobSchedule to django-q2."

    def handle(self, *args, **options) -> None:
        counts = schedules_sync_all()
        self.stdout.write(self.style.SUCCESS(
            f"Job schedules in sync: {counts['created']} declared created, {counts['synced']} synced, "
            f"{counts['removed']} stale removed; the jobs.reap sweep is scheduled."))
