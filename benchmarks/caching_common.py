"""Set-up shared by the caching benchmarks: Django on the benchmark settings, a tenant, a token, policies."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.caching_settings"
if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"):
    sys.exit("The caching benchmarks compare against cache_page on the same Redis: set DATABASE_URL and REDIS_URL.")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prepare(policies: list[dict]) -> tuple[object, str]:
    """Migrate, then (re)create the bench tenant, its token and the given policies. Returns (tenant, token)."""
    from apps.caching.models import CachePolicy
    from apps.core.store import redis_client
    from apps.tenancy.models import Tenant
    from apps.tenancy.services import token_create

    call_command("migrate", verbosity=0)
    tenant, _ = Tenant.objects.get_or_create(slug="bench-caching", defaults={"name": "Caching benchmark"})
    CachePolicy.objects.for_tenant(tenant).delete()
    for fields in policies:
        CachePolicy.objects.create(tenant=tenant, **fields)
    _, token = token_create(tenant=tenant, name="bench", role="viewer")
    client = redis_client()
    for key in client.scan_iter(match="bulwark:*"):
        client.delete(key)
    from django.core.cache import cache

    cache.clear()
    return tenant, token


def fire(urls: list[str], path: str, headers: dict, n: int) -> tuple[list[float], list[int]]:
    """n concurrent GETs spread over the servers; (latencies in ms, statuses)."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    start_together = threading.Barrier(n)
    # One client for all threads: building one per request costs an SSL context each, and skews the clock.
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))

    def one(i: int) -> tuple[float, int]:
        start_together.wait(30)
        started = time.perf_counter()
        response = client.get(urls[i % len(urls)] + path, headers=headers)
        return (time.perf_counter() - started) * 1000, response.status_code

    with client, ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(one, range(n)))
    return [r[0] for r in results], [r[1] for r in results]


def warm_servers(urls: list[str], headers: dict) -> None:
    """One request per server first, so token and policy snapshots are compiled before the load."""
    import httpx

    for url in urls:
        for _ in range(2):
            httpx.get(f"{url}/bench/slow/warmup/?ms=0", headers=headers, timeout=30)


def origin_calls(name: str) -> int:
    from apps.core.store import redis_client, store_key

    return int(redis_client().get(store_key("bench-origin-calls", name)) or 0)
