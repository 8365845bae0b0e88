"""The jobs app's view of the job type registry, which lives in `apps.core.job_types` (see there why)."""
from __future__ import annotations

from django.utils.module_loading import autodiscover_modules

from apps.core.job_types import DoNotRetry, JobCancelled, JobType, get_type, job_type, registry

__all__ = ["DoNotRetry", "JobCancelled", "JobType", "discover", "get_type", "job_type", "registry"]


def discover() -> None:
    """Import every installed app's `jobs.py`, whose `@job_type` declarations fill the registry."""
    autodiscover_modules("jobs")
