"""Detection of every finding kind planted in the demo app, the effect of the fixes Bulwark applies, and the
sampling overhead, in one run on PostgreSQL and Redis.

Run:  DATABASE_URL=... REDIS_URL=... BULWARK_PORT_BASE=... .venv/bin/python benchmarks/optimization_detection.py
Traffic goes through the whole middleware stack in-process (Django's test client, a tenant's token):
- the ten route-level kinds, each on its endpoint beside a healthy twin;
- the policy kinds on endpoints under policies made for the run: a cache policy whose entries expire before
  they are reused (twin: one that hits), a shadow rate limit that would deny most requests (twin: a lenient
  one), an enforced limit far above any traffic (twin: one the traffic comes near), a breaker on a dependency
  that fails in runs (twin: a breaker on a healthy one);
- the saturation kinds (route `-`) from monitoring's system samples: a saturated window (CPU, memory,
  database connections near max_connections, the job queue's oldest job ageing faster than it drains) and a
  healthy window before it, which must stay silent. Host figures cannot be made saturated on purpose on a
  shared machine, so these samples are planted rows (host `bench-host`), as the `monitoring.sample` job
  writes them.
Prints recall per kind and false positives (on the 14 healthy routes, the healthy policies and the healthy
system window); then applies each applicable fix, drives the same traffic again and prints p50/p95 before
and after; then the time per request with the collector sampling every request vs monitoring only. Figures
are noisy on a shared machine: read the ratios.
"""
from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ratelimit_harness import port  # noqa: E402

REQUESTS = 30
SYSTEM_KINDS = ("cpu_saturation", "memory_saturation", "db_connection_saturation", "job_queue_backlog")
OVERHEAD_ROUNDS = 24
OVERHEAD_REQUESTS = 100


def setup() -> None:
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must be set: the benchmark runs on PostgreSQL and Redis")
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.optimization_settings"
    import django

    django.setup()
    logging.disable(logging.ERROR)  # the planted failing endpoint logs every 502
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> None:
    setup()
    from django.db import connection
    from django.test import Client

    from apps.caching import services as caching
    from apps.caching.models import CachePolicy
    from apps.core.errors import ApplicationError
    from apps.monitoring.models import SystemSample
    from apps.optimization import collector, services
    from apps.optimization.models import SYSTEM_ROUTE, Finding, RequestSample
    from apps.ratelimit import services as ratelimit
    from apps.ratelimit.models import RateLimitPolicy
    from apps.resilience import services as resilience
    from apps.resilience.models import BreakerEvent, BreakerPolicy
    from apps.tenancy.models import Tenant
    from apps.tenancy.services import token_create
    from benchmarks.optimization_demo import views
    from benchmarks.optimization_demo.schema import ensure_schema
    from benchmarks.optimization_demo.upstream import Upstream
    from benchmarks.optimization_demo.urls import (
        FLAPPING_ROUTE,
        HEALTHY,
        PLANTED,
        POLICY_HEALTHY,
        POLICY_PLANTED,
    )

    ensure_schema()
    tenant, _ = Tenant.objects.get_or_create(slug="opt-bench", defaults={"name": "Optimization benchmark"})
    for model in (Finding, CachePolicy, BreakerPolicy, RateLimitPolicy, BreakerEvent):
        for row in model.objects.filter(tenant=tenant):
            row.delete()
    RequestSample.objects.filter(tenant=tenant).delete()
    SystemSample.objects.filter(host="bench-host").delete()
    Finding.objects.filter(tenant=None, kind__in=SYSTEM_KINDS).delete()
    _, token = token_create(tenant=tenant, name=f"bench-{time.time():.0f}", role="viewer")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    caching.policy_create(tenant=tenant, data={"name": "bench-catalog", "route_name": "catalog", "ttl_s": 1,
                                               "vary_on": "tenant", "methods": ["GET"]})
    caching.policy_create(tenant=tenant, data={"name": "bench-catalog-hot", "route_name": "catalog-hot",
                                               "ttl_s": 300, "vary_on": "tenant", "methods": ["GET"]})
    for name, route, rate, mode in (("bench-quote", "quote", 10, "shadow"),
                                    ("bench-quote-lenient", "quote-lenient", 1_000, "shadow"),
                                    ("bench-ping-unlimited", "ping-unlimited", 100_000, "enforce"),
                                    ("bench-ping-limited", "ping-limited", 100, "enforce")):
        ratelimit.policy_create(tenant=tenant, data={"name": name, "match_kind": "route", "match_value": route,
                                                     "rate": rate, "period": "minute", "mode": mode,
                                                     "key_kind": "tenant"})
    resilience.policy_create(model=BreakerPolicy, tenant=tenant, data={
        "name": "bench-flaky", "window_size": 4, "minimum_calls": 4, "failure_rate_threshold_pct": "50",
        "open_duration_s": 0.03, "timeout_s": 2.0})
    resilience.policy_create(model=BreakerPolicy, tenant=tenant, data={
        "name": "bench-steady", "window_size": 20, "minimum_calls": 10, "open_duration_s": 5.0, "timeout_s": 2.0})
    time.sleep(2.5)  # the policies reach every process within the snapshot interval

    def drive(path: str, n: int = REQUESTS, pause_s: float = 0.0, query=None) -> None:
        for i in range(n):
            client.get("/" + path, query(i) if query else None)
            if pause_s:
                time.sleep(pause_s)
        collector.sink.flush(time.time())

    # How each policy route is driven (before and after its fix): the catalog's three keys come back after its
    # 1 s TTL; the flaky dependency is called at a pace its breaker's open duration lets through.
    traffic = {
        "demo/catalog/": {"n": 24, "pause_s": 0.4, "query": lambda i: {"k": str(i % 3)}},
        "demo/quote/": {"n": 40}, "demo/quote/lenient/": {"n": 40},
        "demo/ping/unlimited/": {"n": 40}, "demo/ping/limited/": {"n": 40},
        FLAPPING_ROUTE: {"n": 40, "pause_s": 0.02},
    }

    # The healthy system window (30 to 45 minutes ago), analysed on its own: it must stay silent.
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    now = time.time()
    plant_system_window(end=now - 30 * 60, saturated=False, max_connections=max_connections)
    healthy_system = services.analyze(window_s=15 * 60, tenant=services.ALL, now=now - 30 * 60)

    with Upstream(port(311)) as upstream, Upstream(port(313), host="127.0.0.2") as failing:
        views.UPSTREAM, views.DEAD_UPSTREAM = upstream.url, f"http://127.0.0.1:{port(312)}"
        views.FAILING_UPSTREAM = failing.url
        started = time.time()
        for path in dict.fromkeys([*PLANTED.values(), *HEALTHY, *POLICY_HEALTHY, *traffic]):
            collector.collector._budget.clear()
            drive(path, **traffic.get(path, {}))
        plant_system_window(end=time.time(), saturated=True, max_connections=max_connections)
        found = services.analyze(window_s=int(time.time() - started) + 60, tenant=services.ALL)

        planted = {**PLANTED, **POLICY_PLANTED, **{kind: SYSTEM_ROUTE for kind in SYSTEM_KINDS}}
        healthy = set(HEALTHY) | set(POLICY_HEALTHY)

        def is_planted(c) -> bool:
            if c.kind == "breaker_flapping":
                return c.subject == "bench-flaky"
            if c.route == SYSTEM_ROUTE and c.kind in SYSTEM_KINDS:
                return c.evidence.get("host", "bench-host") == "bench-host"
            return planted.get(c.kind) == c.route

        print(f"{'kind':<38} {'found':>5}  route")
        hits = 0
        for kind, route in planted.items():
            ok = any(c.kind == kind and is_planted(c) for c in found)
            hits += ok
            print(f"{kind:<38} {'yes' if ok else 'NO':>5}  {route}")
        false_positives = [c for c in found if c.route in healthy or c.subject == "bench-steady"]
        false_positives += healthy_system
        extra = [c for c in found if not is_planted(c) and c not in false_positives]
        print(f"recall {hits}/{len(planted)}; false positives on {len(healthy)} healthy routes, their policies "
              f"and a healthy system window: {len(false_positives)}; other findings: {len(extra)}")
        for c in false_positives + extra:
            print("  ", c.line())

        print("\napplied fixes (the requests the finding is about, before -> after)")
        for finding in Finding.objects.filter(tenant=tenant, status="open").order_by("kind"):
            if not finding.applicable:
                continue
            try:
                finding = services.finding_apply(finding=finding)
            except ApplicationError as exc:
                print(f"  {finding.kind:<34} {finding.route:<26} not applied: {exc.message}")
                continue
            time.sleep(2.5)  # the policy reaches every process within the snapshot interval
            applied_at = time.time()
            collector.collector._budget.clear()
            route = FLAPPING_ROUTE if finding.route == SYSTEM_ROUTE else finding.route
            drive(route, **traffic.get(route, {"n": REQUESTS * 2}))
            after = services.finding_figures(finding=finding, since=services._at(applied_at),
                                             until=services._at(time.time()))
            before = finding.before
            if after is None or "p95_ms" not in before:
                print(f"  {finding.kind:<34} {finding.route:<26} applied; no request times in its evidence")
                continue
            ratio = before["p95_ms"] / after["p95_ms"] if after["p95_ms"] else float("nan")
            print(f"  {finding.kind:<34} {route:<26} p50 {before['p50_ms']:7.1f} -> {after['p50_ms']:7.1f} ms, "
                  f"p95 {before['p95_ms']:7.1f} -> {after['p95_ms']:7.1f} ms ({ratio:.1f}x); "
                  f"errors {before['error_rate']} -> {after['error_rate']}")
    overhead(client)


def plant_system_window(*, end: float, saturated: bool, max_connections: int) -> None:
    """Five system samples over the minute before `end`, as monitoring's sampler writes them."""
    from datetime import UTC, datetime

    from apps.monitoring.models import SystemSample

    for i in range(5):
        at = end - 50 + i * 12
        if saturated:
            figures = {"cpu": 97.0, "memory": 95.0, "connections": max_connections - 1, "age": 30 + i * 12 * 1.2,
                       "depth": 10 + i * 10}
        else:
            figures = {"cpu": 35.0, "memory": 50.0, "connections": 5, "age": [4, 2, 6, 1, 3][i], "depth": [1, 0, 2, 0, 1][i]}
        SystemSample.objects.create(
            host="bench-host", taken_at=datetime.fromtimestamp(at, tz=UTC), cpu_percent=figures["cpu"],
            memory_percent=figures["memory"], disk_percent=20.0,
            data={"postgres": {"connections": figures["connections"]},
                  "jobs": {"oldest_age_s": figures["age"], "queue_depth": figures["depth"]}})


def overhead(client) -> None:
    """Cost per request of a healthy endpoint with the collector registered vs unregistered (monitoring only):
    paired blocks in alternating order; per block the median wall time per request and the process CPU time
    per request (every thread: the stack sampler's too; steadier than wall time on a shared machine), writing
    the block's samples included. Before a monitoring-only block the stack sampler is left to go idle, as it
    does in a process where nothing is sampled. Two settings: every request sampled (what a route under
    MAX_SAMPLES_PER_ROUTE_MINUTE requests a minute gets with the defaults), and the defaults under sustained
    traffic (the per-route cap holds: a few of the requests are sampled). The stats flusher thread is stopped
    meanwhile, so each block writes its own samples (and monitoring's buffers wait, in both arms)."""
    from django.test import override_settings

    from apps.core import stats
    from apps.monitoring.observers import register_request_observer, unregister_request_observer
    from apps.optimization import collector
    from benchmarks.optimization_demo.urls import HEALTHY

    sampler = collector.collector.sampler
    written = [0]
    stats.pipeline.stop()

    def block(path: str, on: bool) -> tuple[float, float]:
        if on:
            register_request_observer(collector.collector)
        else:
            unregister_request_observer(collector.collector)
            sampler.IDLE_S = 0.0
            time.sleep(0.05)
            del sampler.IDLE_S  # back to the class's
        walls = []
        cpu_start = time.process_time()
        for _ in range(OVERHEAD_REQUESTS):
            begin = time.perf_counter()
            client.get(path)
            walls.append(time.perf_counter() - begin)
        batch = collector.sink.take()
        written[0] += len(batch)
        if batch:  # writing the samples is part of the cost (the stats flusher's)
            collector.sink.write(batch, time.time())
        cpu = (time.process_time() - cpu_start) / OVERHEAD_REQUESTS
        return statistics.median(walls) * 1000, cpu * 1000

    def measure(path: str, rounds: int) -> dict:
        figures, written[0] = {False: [], True: []}, 0
        for _ in range(20):
            client.get(path)
        collector.sink.take()
        for round_ in range(rounds):
            for on in ((False, True) if round_ % 2 == 0 else (True, False)):
                figures[on].append(block(path, on))
        register_request_observer(collector.collector)
        cpu_ratios = [on[1] / off[1] for off, on in zip(figures[False], figures[True], strict=True)]
        wall_ratios = [on[0] / off[0] for off, on in zip(figures[False], figures[True], strict=True)]
        return {"cpu": {on: statistics.median(f[1] for f in figures[on]) for on in (False, True)},
                "wall": {on: statistics.median(f[0] for f in figures[on]) for on in (False, True)},
                "cpu_pct": (statistics.median(cpu_ratios) - 1) * 100,
                "cpu_quartiles": [(q - 1) * 100 for q in statistics.quantiles(cpu_ratios, n=4)],
                "wall_pct": (statistics.median(wall_ratios) - 1) * 100,
                "sampled": written[0] / (rounds * OVERHEAD_REQUESTS)}

    def show(label: str, path: str, m: dict) -> None:
        print(f"  {label:<30} {path:<22} CPU {m['cpu'][False]:5.2f} -> {m['cpu'][True]:5.2f} ms "
              f"{m['cpu_pct']:+5.1f} % (rounds' quartiles {m['cpu_quartiles'][0]:+.1f} / "
              f"{m['cpu_quartiles'][2]:+.1f} %); wall median {m['wall'][False]:5.2f} -> {m['wall'][True]:5.2f} "
              f"ms {m['wall_pct']:+5.1f} %; {m['sampled']:.0%} of requests sampled")

    print(f"\ncollector overhead on top of monitoring (paired blocks of {OVERHEAD_REQUESTS} requests, median of "
          "the rounds' ratios)")
    paths = ("/" + HEALTHY[1], "/" + HEALTHY[0])
    with override_settings(BULWARK={"OPTIMIZATION": {"MAX_SAMPLES_PER_ROUTE_MINUTE": 10**9}}):
        for path in paths:
            show("every request sampled", path, measure(path, OVERHEAD_ROUNDS))
    collector.collector._budget.clear()
    show("defaults, sustained traffic", paths[0], measure(paths[0], OVERHEAD_ROUNDS // 2))


if __name__ == "__main__":
    main()
