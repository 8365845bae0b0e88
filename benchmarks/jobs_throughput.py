"""No-op jobs per second through Bulwark's job_submit + workers beside bare django_q.tasks.async_task.

Both on the same broker (the Redis of REDIS_URL, else the ORM broker) and the same qcluster, which this
script starts and stops. Prints jobs/s of each, the ratio, and p50/p95 latencies.

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python benchmarks/jobs_throughput.py
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
logging.getLogger("django-q").setLevel(logging.WARNING)  # one INFO line per bare enqueue would drown the figures

from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_q.brokers import get_broker  # noqa: E402
from django_q.models import Task  # noqa: E402
from django_q.tasks import async_task  # noqa: E402

from apps.core.context import Actor  # noqa: E402
from apps.jobs.models import JobRun  # noqa: E402
from apps.jobs.services import job_submit  # noqa: E402
from apps.tenancy.models import Tenant  # noqa: E402

# The bare no-op: one INCR on the shared cache, so its completion is seen without waiting for django-q2's
# monitor to save Task rows (which lags behind the workers and would make the baseline look slow).
BARE_FUNC = "django.core.cache.cache.incr"
BARE_COUNTER = "bench:jobs:bare-done"
TIMEOUT_S = 45


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def in_threads(submit, n: int, submitters: int, spacing_s: float) -> list:
    """Call submit() n times from `submitters` threads (like several web processes), each with its own
    database connection; returns what the calls returned."""

    def share(count: int) -> list:
        try:
            results = []
            for _ in range(count):
                results.append(submit())
                time.sleep(spacing_s)
            return results
        finally:
            connection.close()

    counts = [n // submitters + (1 if i < n % submitters else 0) for i in range(submitters)]
    with ThreadPoolExecutor(max_workers=submitters) as pool:
        return [result for part in pool.map(share, counts) for result in part]


def bare(n: int, submitters: int, spacing_s: float = 0.0) -> tuple[float, list[float]]:
    """(jobs/s, enqueue->finish latencies) of n bare django-q2 tasks."""
    group = f"bench-bare-{time.time_ns()}"
    cache.set(BARE_COUNTER, 0, None)
    start = time.perf_counter()
    in_threads(lambda: async_task(BARE_FUNC, BARE_COUNTER, group=group), n, submitters, spacing_s)
    wait(lambda: cache.get(BARE_COUNTER) >= n, "bare tasks")
    elapsed_s = time.perf_counter() - start
    wait(lambda: Task.objects.filter(group=group).count() >= n, "django-q2's monitor to save the bare tasks")
    latencies = [(t.stopped - t.started).total_seconds() for t in Task.objects.filter(group=group)]
    return n / elapsed_s, latencies


def bulwark(n: int, tenant: Tenant, submitters: int, spacing_s: float = 0.0) -> tuple[float, list[float], list[float]]:
    """(jobs/s, queue->start latencies, queue->finish latencies) of n runs through job_submit."""
    actor = Actor.system(display="benchmark")
    start = time.perf_counter()
    pks = in_threads(lambda: job_submit(job_type="jobs.ping", params={}, tenant=tenant, submitted_by=actor).pk,
                     n, submitters, spacing_s)
    wait(lambda: JobRun.objects.filter(pk__in=pks, status__in=JobRun.FINISHED).count() >= n, "bulwark runs")
    elapsed_s = time.perf_counter() - start
    runs = list(JobRun.objects.filter(pk__in=pks))
    assert all(r.status == "succeeded" for r in runs), "some benchmark runs did not succeed"
    to_start = [(r.started_at - r.queued_at).total_seconds() for r in runs]
    to_finish = [(r.finished_at - r.queued_at).total_seconds() for r in runs]
    return n / elapsed_s, to_start, to_finish


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:7.1f} ms  p95 {percentile(values, 0.95) * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=240)
    parser.add_argument("--workers", type=int, default=2, help="qcluster worker processes")
    parser.add_argument("--submitters", type=int, default=4, help="threads submitting, for both sides")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    tenant, _ = Tenant.objects.get_or_create(slug="benchmark", defaults={"name": "Benchmark"})
    broker = get_broker()
    broker.purge_queue()
    env = {**os.environ, "BULWARK_Q_WORKERS": str(args.workers)}
    log = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        bare(20, 1)  # warm up: workers started, connections open
        bulwark(20, tenant, 1)
        bare_rate, bare_latency = bare(args.jobs, args.submitters)
        bulwark_rate, to_start, to_finish = bulwark(args.jobs, tenant, args.submitters)
        # Latency without a backlog: one job every 50 ms, well under what the workers absorb.
        _, idle_bare_latency = bare(30, 1, spacing_s=0.05)
        _, idle_to_start, idle_to_finish = bulwark(30, tenant, 1, spacing_s=0.05)
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
        log.close()
        JobRun.objects.filter(tenant=tenant).delete()
    print(f"broker: {broker.info()}  workers: {args.workers}  submitter threads: {args.submitters}  "
          f"jobs per side: {args.jobs}")
    print("burst of all jobs at once (throughput; latencies include the backlog):")
    print(f"  bare django-q2 async_task : {bare_rate:7.1f} jobs/s   enqueue->finish {ms(bare_latency)}")
    print(f"  bulwark job_submit        : {bulwark_rate:7.1f} jobs/s   enqueue->finish {ms(to_finish)}")
    print(f"  bulwark queue->start      :                  {ms(to_start)}")
    print(f"  ratio bulwark / bare      : {bulwark_rate / bare_rate:.2f}  (aim >= 0.80)")
    print("one job every 50 ms (latency without a backlog):")
    print(f"  bare django-q2 enqueue->finish    {ms(idle_bare_latency)}")
    print(f"  bulwark queue->start              {ms(idle_to_start)}")
    print(f"  bulwark queue->finish             {ms(idle_to_finish)}")


if __name__ == "__main__":
    main()
