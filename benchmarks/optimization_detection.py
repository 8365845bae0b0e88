"""Detection of planted problems in the demo app, the effect of the fixes Bulwark applies, and the sampling
overhead, in one run on PostgreSQL and Redis.

Run:  DATABASE_URL=... REDIS_URL=... BULWARK_PORT_BASE=... .venv/bin/python benchmarks/optimization_detection.py
Traffic goes through the whole middleware stack in-process (Django's test client, a tenant's token). Prints
recall per kind and false positives on the healthy twins; then applies each applicable fix, drives the same
traffic again and prints p95 before/after; then the time per request with the sampler on vs off (monitoring
on in both). Figures are noisy on a shared machine: read the ratios.
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
    from django.test import Client

    from apps.caching.models import CachePolicy
    from apps.core.errors import ApplicationError
    from apps.optimization import collector, services
    from apps.optimization.models import Finding, RequestSample
    from apps.resilience.models import BreakerPolicy
    from apps.tenancy.models import Tenant
    from apps.tenancy.services import token_create
    from benchmarks.optimization_demo import views
    from benchmarks.optimization_demo.schema import ensure_schema
    from benchmarks.optimization_demo.upstream import Upstream
    from benchmarks.optimization_demo.urls import HEALTHY, PLANTED

    ensure_schema()
    tenant, _ = Tenant.objects.get_or_create(slug="opt-bench", defaults={"name": "Optimization benchmark"})
    for model in (Finding, CachePolicy, BreakerPolicy):
        for row in model.objects.filter(tenant=tenant):
            row.delete()
    RequestSample.objects.filter(tenant=tenant).delete()
    _, token = token_create(tenant=tenant, name=f"bench-{time.time():.0f}", role="viewer")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def drive(path: str, n: int = REQUESTS) -> None:
        for _ in range(n):
            client.get("/" + path)
        collector.sink.flush(time.time())

    with Upstream(port(311)) as upstream:
        views.UPSTREAM, views.DEAD_UPSTREAM = upstream.url, f"http://127.0.0.1:{port(312)}"
        started = time.time()
        for path in [*PLANTED.values(), *HEALTHY]:
            collector.collector._budget.clear()
            drive(path)
        found = services.analyze(window_s=int(time.time() - started) + 60, tenant=tenant)
        print(f"{'kind':<38} {'found':>5}  route")
        hits = 0
        for kind, route in PLANTED.items():
            ok = any(c.kind == kind and c.route == route for c in found)
            hits += ok
            print(f"{kind:<38} {'yes' if ok else 'NO':>5}  {route}")
        planted_routes = set(PLANTED.values())
        false_positives = [c for c in found if c.route in HEALTHY]
        extra = [c for c in found if c.route in planted_routes and (c.kind, c.route) not in PLANTED.items()]
        print(f"recall {hits}/{len(PLANTED)}; false positives on {len(HEALTHY)} healthy twins: "
              f"{len(false_positives)}; extra findings on planted routes: {len(extra)}")
        for c in false_positives + extra:
            print("  ", c.line())

        print("\napplied fixes (p95 of the route's requests, before -> after)")
        for finding in Finding.objects.filter(tenant=tenant, status="open"):
            if not finding.applicable:
                continue
            try:
                finding = services.finding_apply(finding=finding)
            except ApplicationError as exc:
                print(f"  {finding.kind:<30} {finding.route:<32} not applied: {exc.message}")
                continue
            time.sleep(2.5)  # the policy reaches every process within the snapshot interval
            applied_at = time.time()
            collector.collector._budget.clear()
            drive(finding.route, n=REQUESTS * 2)
            after = services.selectors.route_figures(
                tenant_id=tenant.pk, route=finding.route, method=finding.method,
                since=services._at(applied_at), until=services._at(time.time()))
            before = finding.before
            ratio = before["p95_ms"] / after["p95_ms"] if after["p95_ms"] else float("nan")
            print(f"  {finding.kind:<30} {finding.route:<32} p95 {before['p95_ms']:8.1f} ms -> "
                  f"{after['p95_ms']:8.1f} ms  ({ratio:.1f}x)")

    print("\nsampling overhead (monitoring on in both; time per request, median of paired rounds)")
    from django.test import override_settings

    from apps.monitoring.observers import register_request_observer, unregister_request_observer

    path = "/" + HEALTHY[1]
    for label, cap in (("default cap (60 sampled per route-minute)", 60), ("every request sampled", 10**9)):
        ratios = []
        with override_settings(BULWARK={"OPTIMIZATION": {"MAX_SAMPLES_PER_ROUTE_MINUTE": cap}}):
            for _ in range(7):
                timings = {}
                for on in (False, True):
                    (register_request_observer if on else unregister_request_observer)(collector.collector)
                    collector.collector._budget.clear()
                    begin = time.perf_counter()
                    for _ in range(200):
                        client.get(path)
                    timings[on] = time.perf_counter() - begin
                ratios.append(timings[True] / timings[False])
                collector.sink.take()
        register_request_observer(collector.collector)
        print(f"  {label:<44} on/off {statistics.median(ratios):.3f} "
              f"({(statistics.median(ratios) - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
