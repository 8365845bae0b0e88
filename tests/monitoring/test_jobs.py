"""`monitoring.rollup` and `monitoring.sample`: registered job types on declared platform schedules."""
from __future__ import annotations

import time

import pytest

from apps.core.context import Actor
from apps.jobs import runner
from apps.jobs import services as job_services
from apps.jobs.models import JobSchedule
from apps.jobs.registry import registry
from apps.monitoring import selectors
from apps.monitoring.models import EndpointRollup, SystemSample

pytestmark = pytest.mark.django_db


def run(type_, tenant, params=None):
    job = job_services.job_submit(type=type_, params=params or {}, tenant=tenant, submitted_by=Actor.system(display="t"))
    runner.execute(job.pk)
    job.refresh_from_db()
    return job


def test_both_jobs_are_declared_every_minute_and_synced_as_platform_schedules(tenant_a):
    assert registry["monitoring.rollup"].interval_min == 1
    assert registry["monitoring.sample"].interval_min == 1
    job_services.schedules_sync_all()
    for name in ("monitoring.rollup", "monitoring.sample"):
        schedule = JobSchedule.objects.get(name=name, tenant=None)
        assert schedule.declared and schedule.enabled


def test_the_rollup_job_folds_the_tenants_closed_minutes(sink, tenant_a, tenant_b):
    past = time.time() - 180
    sink.record(tenant_a.pk, "api/v1/a", "GET", 200, 3.0, now=past)
    sink.record(tenant_b.pk, "api/v1/b", "GET", 200, 3.0, now=past)
    sink.flush(past)
    job = run("monitoring.rollup", tenant_a)
    assert job.status == "succeeded", job.error
    assert job.result["folded"] == 1
    assert list(EndpointRollup.objects.exclude(endpoint__tenant=None)
                .values_list("endpoint__tenant", flat=True)) == [tenant_a.pk]
    assert "retention" in job.result
    assert run("monitoring.rollup", tenant_b).result["folded"] == 1


def test_the_sample_job_stores_system_store_and_worker_figures(tenant_a, settings):
    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"SAMPLE_EVERY_S": 1}}
    job = run("monitoring.sample", tenant_a, {"repeat": 2})
    assert job.status == "succeeded", job.error
    assert job.result["samples"] == 2
    latest = selectors.latest_system_sample()
    assert 0 <= latest["cpu_percent"] <= 100 and 0 < latest["memory_percent"] <= 100
    assert latest["postgres"]["connections"] >= 1 and "statements" in latest["postgres"]
    assert latest["redis"]["used_memory"] > 0
    assert latest["jobs"]["queue_depth"] >= 0
    assert {"load", "swap_percent", "disk_io", "net_io", "processes"} <= set(latest)
    assert SystemSample.objects.count() == 2


def test_one_sample_per_host_and_minute_however_many_tenants_run_the_schedule(tenant_a, tenant_b, settings):
    from apps.monitoring import jobs

    settings.BULWARK = {**settings.BULWARK, "MONITORING": {"SAMPLE_EVERY_S": 60}}
    results = [run("monitoring.sample", tenant).result for tenant in (tenant_a, tenant_b)]
    assert sorted(r["samples"] for r in results) == [0, 1]
    assert SystemSample.objects.count() == 1
    assert SystemSample.objects.get().host == jobs.sampler.HOST


def test_processes_report_their_rss_and_its_change(redis_url):
    from apps.monitoring.sampler import ProcessSink, processes

    sink = ProcessSink()
    sink.flush(time.time())
    _bloat = bytearray(32 * 1024 * 1024)
    sink.flush(time.time())
    [me] = [p for p in processes() if p["pid"] == __import__("os").getpid()]
    assert me["rss"] > 0 and me["rss_delta"] > 16 * 1024 * 1024
    del _bloat
