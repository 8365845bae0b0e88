"""`monitoring.rollup` and `monitoring.sample`: registered job types on declared platform schedules."""
from __future__ import annotations

import time

import pytest

from apps.core.context import Actor
from apps.jobs import runner
from apps.jobs import services as job_services
from apps.jobs.models import JobSchedule
from apps.jobs.registry import registry
from apps.monitoring import selectors, services
from apps.monitoring.models import EndpointRollup, SystemSample

pytestmark = pytest.mark.django_db


def run(type_, tenant, params=None):
    job = job_services.job_submit(job_type=type_, params=params or {}, tenant=tenant, submitted_by=Actor.system(display="t"))
    runner.execute(job.pk)
    job.refresh_from_db()
    return job


def test_the_rollup_is_a_minute_platform_schedule_and_sampling_is_not_scheduled(tenant_a):
    assert registry["monitoring.rollup"].interval_min == 1
    # Sampling runs every 10 s per host from the processes' stats flushers, not on a minute schedule.
    assert not registry["monitoring.sample"].periodic
    job_services.schedules_sync_all()
    assert JobSchedule.objects.get(name="monitoring.rollup", tenant=None).declared
    assert not JobSchedule.objects.filter(name="monitoring.sample").exists()


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


def test_the_sample_job_stores_system_store_and_worker_figures(tenant_a):
    job = run("monitoring.sample", tenant_a)
    assert job.status == "succeeded", job.error
    assert job.result["samples"] == 1
    latest = selectors.latest_system_sample()
    assert 0 <= latest["cpu_percent"] <= 100 and 0 < latest["memory_percent"] <= 100
    assert latest["postgres"]["connections"] >= 1 and "statements" in latest["postgres"]
    assert latest["redis"]["used_memory"] > 0
    assert latest["jobs"]["queue_depth"] >= 0
    assert {"load", "swap_percent", "disk_io", "net_io", "processes", "cpu_times"} <= set(latest)
    # A second run within the same 10 s slot of this host adds nothing.
    assert run("monitoring.sample", tenant_a).result["samples"] in (0, 1)
    assert SystemSample.objects.count() <= 2


def test_every_process_ticks_but_a_host_gets_one_sample_per_slot(db, clock):
    """Three processes of one host tick every 5 s (the flush interval) for a minute: six samples, 10 s apart."""
    from apps.monitoring.sampler import HOST, HostSampler

    processes = [HostSampler(active=True) for _ in range(3)]
    for _ in range(12):
        for process in processes:
            process.flush(clock.time())
        clock.advance(5)
    taken = list(SystemSample.objects.filter(host=HOST).order_by("taken_at").values_list("taken_at", flat=True))
    assert len(taken) == 6
    assert {(b - a).total_seconds() for a, b in zip(taken, taken[1:], strict=False)} == {10.0}


def test_cpu_is_the_hosts_average_since_its_previous_sample(db, clock):
    from apps.monitoring import sampler

    first = services.sample_take(host="host-x", now=clock.time())
    clock.advance(10)
    busy = time.process_time() + 0.2
    while time.process_time() < busy:  # keep one core busy for a moment
        pass
    second = services.sample_take(host="host-x", now=clock.time())
    assert second.data["cpu_times"]["total"] > first.data["cpu_times"]["total"]
    assert 0 < second.cpu_percent <= 100
    assert services.sample_take(host="host-x", now=clock.time() + 1) is None  # same slot: no second sample
    assert sampler.HostSampler().flush(clock.time() + 10) is None  # this test process is no server: it never samples
    assert SystemSample.objects.filter(host=sampler.HOST).count() == 0


def test_only_server_processes_sample(monkeypatch):
    from apps.monitoring import sampler

    for argv, kind in ((["/venv/bin/uvicorn", "config.asgi:application"], "web"),
                       (["/venv/lib/python3.11/site-packages/uvicorn/__main__.py", "config.asgi:application"], "web"),
                       (["manage.py", "qcluster"], "worker"), (["manage.py", "serve"], "web"),
                       (["/venv/bin/pytest", "tests/monitoring/test_observers.py"], "pytest"),
                       (["manage.py", "migrate"], "manage.py")):
        monkeypatch.setattr(sampler.sys, "argv", argv)
        assert sampler._process_kind() == kind


def test_processes_report_their_rss_and_its_change(redis_url):
    from apps.monitoring.sampler import ProcessSink, processes

    sink = ProcessSink()
    sink.flush(time.time())
    _bloat = bytearray(32 * 1024 * 1024)
    sink.flush(time.time())
    [me] = [p for p in processes() if p["pid"] == __import__("os").getpid()]
    assert me["rss"] > 0 and me["rss_delta"] > 16 * 1024 * 1024
    del _bloat


def test_host_and_queue_selectors(db, clock, tenant_a, tenant_b):
    from datetime import UTC, datetime

    at = lambda s: datetime.fromtimestamp(clock.time() + s, tz=UTC)  # noqa: E731
    figures = {"cpu_percent": 10.0, "memory_percent": 50.0, "disk_percent": 40.0}
    services.sample_record(host="h1", figures=figures, taken_at=at(-700))  # stale: not current
    services.sample_record(host="h1", figures={**figures, "cpu_percent": 20.0}, taken_at=at(-20))
    services.sample_record(host="h1", figures={**figures, "cpu_percent": 30.0}, taken_at=at(-10))
    services.sample_record(host="h2", figures={**figures, "cpu_percent": 90.0}, taken_at=at(-5))
    services.sample_record(host="h3", figures=figures, taken_at=at(-900))
    latest = selectors.latest_host_samples(now=clock.time())
    assert [(s["host"], s["cpu_percent"]) for s in latest] == [("h2", 90.0), ("h1", 30.0)]
    window = selectors.host_samples(start=clock.time() - 60, end=clock.time(), host="h1")
    assert [s["cpu_percent"] for s in window] == [20.0, 30.0]
    job_services.job_submit(job_type="jobs.ping", params={}, tenant=tenant_a, submitted_by=Actor.system(display="t"))
    assert selectors.job_queue(tenant=tenant_a)["depth"] == 1
    assert selectors.job_queue(tenant=tenant_b) == {"depth": 0, "oldest_age_s": None}
    assert selectors.job_queue()["depth"] >= 1
