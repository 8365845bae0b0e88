"""No-op jobs per second through Bulwark's job_submit + workers beside bare django_q.tasks.async_task.

Both sides on the same broker and the same qcluster, which this script starts and stops; by default it runs
once per broker (the Redis of REDIS_URL, and the ORM broker, for which REDIS_URL is left out of the child's
environment). Prints jobs/s of each, the ratio, queue-to-start and queue-to-finish p50/p95, and per job the
transactions committed in the benchmark's database (pg_stat_database; each autocommit statement is one) and
the WAL flushes of the server (pg_stat_wal, server-wide: other databases on a shared server add to it).

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python benchmarks/jobs_throughput.py
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
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

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_q.brokers import get_broker  # noqa: E402
from django_q.models import Task  # noqa: E402
from django_q.tasks import async_task  # noqa: E402

from apps.core.context import Actor  # noqa: E402
from apps.jobs.models import JobRun  # noqa: E402
from apps.jobs.services import Submission, job_submit, job_submit_many  # noqa: E402
from apps.tenancy.models import Tenant  # noqa: E402

# The bare no-op appends a byte to a shared file, so its completion is seen without waiting for django-q2's
# monitor to save Task rows (which lags behind the workers and would make the baseline look slow).
BARE_FUNC = "benchmarks.jobs_bare.done"
TIMEOUT_S = 90


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
    handle, counter = tempfile.mkstemp(prefix="bulwark-bench-bare-")
    os.close(handle)
    try:
        start = time.perf_counter()
        in_threads(lambda: async_task(BARE_FUNC, counter, group=group), n, submitters, spacing_s)
        wait(lambda: os.path.getsize(counter) >= n, "bare tasks")
        elapsed_s = time.perf_counter() - start
    finally:
        os.unlink(counter)
    wait(lambda: Task.objects.filter(group=group).count() >= n, "django-q2's monitor to save the bare tasks")
    latencies = [(t.stopped - t.started).total_seconds() for t in Task.objects.filter(group=group)]
    return n / elapsed_s, latencies


def database_counters() -> tuple[int, int]:
    """(transactions committed in this database, WAL flushes of the server) so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        commits = cursor.fetchone()[0]
        cursor.execute("SELECT wal_sync FROM pg_stat_wal")
        flushes = cursor.fetchone()[0]
    return commits, flushes


def counted(measure):
    """Run measure(); return its result and the (commits, WAL flushes) it caused, as PostgreSQL counts them
    (its statistics reach the views within about a second, hence the pauses)."""
    if connection.vendor != "postgresql":
        return measure(), None
    time.sleep(1.5)
    before = database_counters()
    result = measure()
    time.sleep(1.5)
    connection.close()  # a fresh snapshot of the statistics views
    after = database_counters()
    return result, (after[0] - before[0], after[1] - before[1])


def bulwark(n: int, tenant: Tenant, submitters: int, spacing_s: float = 0.0,
            batch: int = 1) -> tuple[float, list[float], list[float]]:
    """(jobs/s, queue->start latencies, queue->finish latencies) of n runs through job_submit, or through
    job_submit_many in batches of `batch`."""
    actor = Actor.system(display="benchmark")
    start = time.perf_counter()
    if batch == 1:
        pks = in_threads(lambda: job_submit(job_type="jobs.ping", params={}, tenant=tenant, submitted_by=actor).pk,
                         n, submitters, spacing_s)
    else:
        batches = in_threads(lambda: [run.pk for run in job_submit_many(
            submissions=[Submission(job_type="jobs.ping", params={}, tenant=tenant)] * batch, submitted_by=actor)],
            n // batch, submitters, spacing_s)
        pks = [pk for part in batches for pk in part]
        n = len(pks)
    wait(lambda: JobRun.objects.filter(pk__in=pks, status__in=JobRun.FINISHED).count() >= n, "bulwark runs")
    elapsed_s = time.perf_counter() - start
    runs = list(JobRun.objects.filter(pk__in=pks))
    assert all(r.status == JobRun.Status.SUCCEEDED for r in runs), "some benchmark runs did not succeed"
    to_start = [(r.started_at - r.queued_at).total_seconds() for r in runs]
    to_finish = [(r.finished_at - r.queued_at).total_seconds() for r in runs]
    return n / elapsed_s, to_start, to_finish


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:7.1f} ms  p95 {percentile(values, 0.95) * 1000:7.1f} ms"


def per_job(counts, n: int) -> str:
    if counts is None:
        return "(statement statistics need PostgreSQL)"
    return f"commits/job {counts[0] / n:5.2f}   WAL flushes/job (server-wide) {counts[1] / n:5.2f}"


def measure(args) -> None:
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
        (bare_rate, bare_latency), bare_counts = counted(lambda: bare(args.jobs, args.submitters))
        (bulwark_rate, to_start, to_finish), bulwark_counts = counted(
            lambda: bulwark(args.jobs, tenant, args.submitters))
        (many_rate, many_to_start, _), many_counts = counted(
            lambda: bulwark(args.jobs, tenant, args.submitters, batch=args.batch))
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
    print(f"                              {per_job(bare_counts, args.jobs)}")
    print(f"  bulwark job_submit        : {bulwark_rate:7.1f} jobs/s   queue->finish   {ms(to_finish)}")
    print(f"                                                 queue->start    {ms(to_start)}")
    print(f"                              {per_job(bulwark_counts, args.jobs)}")
    print(f"  bulwark job_submit_many({args.batch}) : {many_rate:7.1f} jobs/s   queue->start {ms(many_to_start)}")
    print(f"                              {per_job(many_counts, args.jobs)}")
    print(f"  ratio bulwark / bare      : {bulwark_rate / bare_rate:.2f}  (aim >= 0.80)")
    print(f"  ratio bulwark batch / bare: {many_rate / bare_rate:.2f}")
    print("one job every 50 ms (latency without a backlog):")
    print(f"  bare django-q2 enqueue->finish    {ms(idle_bare_latency)}")
    print(f"  bulwark queue->start              {ms(idle_to_start)}")
    print(f"  bulwark queue->finish             {ms(idle_to_finish)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=240)
    parser.add_argument("--workers", type=int, default=2, help="qcluster worker processes")
    parser.add_argument("--submitters", type=int, default=4, help="threads submitting, for both sides")
    parser.add_argument("--batch", type=int, default=20, help="runs per job_submit_many call")
    parser.add_argument("--broker", choices=["both", "redis", "orm"], default="both",
                        help="both: one run per broker, each in a child process with its own settings")
    args = parser.parse_args()
    if args.broker != "both":
        measure(args)
        return
    for broker in ("redis", "orm"):
        env = dict(os.environ)
        if broker == "orm":
            env.pop("REDIS_URL", None)  # the embedded default: ORM broker (and an in-process cache)
        elif not env.get("REDIS_URL"):
            print("redis: skipped (REDIS_URL is not set)")
            continue
        print(f"=== {broker} broker ===", flush=True)
        subprocess.run([sys.executable, __file__, "--broker", broker, "--jobs", str(args.jobs), "--workers",
                        str(args.workers), "--submitters", str(args.submitters), "--batch", str(args.batch)],
                       env=env, check=True)


if __name__ == "__main__":
    main()
