"""Startup refusals: django-q2 settings under which jobs would run twice or be killed before their timeout."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from apps.core.job_types import registry
from apps.jobs.conf import jobs_settings
from apps.tenancy.roles import Role


@register()
def check_q_cluster_timeouts(app_configs=None, **kwargs) -> list[Error]:
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    timeout = q_cluster.get("timeout")
    retry = q_cluster.get("retry", 60)
    errors = []
    if not registry:
        return errors
    longest = max(registry.values(), key=lambda t: t.timeout_s)
    if retry is not None and retry <= longest.timeout_s:
        errors.append(Error(
            f"Q_CLUSTER['retry'] ({retry} s) must exceed the longest job timeout ({longest.timeout_s} s of "
            f"{longest.name!r}); otherwise the broker redelivers a running job and it runs twice.",
            hint="Raise Q_CLUSTER['retry'] (BULWARK_Q_RETRY) or lower that job type's timeout_s.",
            id="bulwark_jobs.E001",
        ))
    if timeout is not None:
        for job in registry.values():
            if job.timeout_s > timeout:
                errors.append(Error(
                    f"Job type {job.name!r} has timeout_s={job.timeout_s}, more than Q_CLUSTER['timeout'] "
                    f"({timeout} s): the cluster would kill it first.",
                    hint="Raise Q_CLUSTER['timeout'] (BULWARK_Q_TIMEOUT) or lower the job's timeout_s.",
                    id="bulwark_jobs.E002",
                ))
    clusters = set(q_cluster.get("ALT_CLUSTERS", {}))
    for job in registry.values():
        if job.queue != "default" and job.queue not in clusters:
            errors.append(Error(
                f"Job type {job.name!r} uses queue {job.queue!r}, which is not in Q_CLUSTER['ALT_CLUSTERS']: "
                f"no worker would ever take its runs.",
                hint=f"Add Q_CLUSTER['ALT_CLUSTERS'][{job.queue!r}] and run `Q_CLUSTER_NAME={job.queue} "
                f"manage.py qcluster`, or use queue='default'.",
                id="bulwark_jobs.E004",
            ))
    for job in registry.values():
        if job.submit_role not in Role.values:
            errors.append(Error(
                f"Job type {job.name!r} has submit_role={job.submit_role!r}, which is not a role "
                f"({', '.join(Role.values)}).", id="bulwark_jobs.E005",
            ))
    if jobs_settings.HEARTBEAT_S >= jobs_settings.LEASE_S:
        errors.append(Error(
            f"BULWARK['JOBS']['HEARTBEAT_S'] ({jobs_settings.HEARTBEAT_S}) must be below LEASE_S "
            f"({jobs_settings.LEASE_S}), or running jobs look orphaned.",
            id="bulwark_jobs.E003",
        ))
    return errors
