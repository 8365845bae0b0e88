"""Exactness under concurrency: 1,000 requests from 64 concurrent clients over 2 server processes on Redis,
against a 100-per-minute limit: Bulwark's GCRA policy beside DRF's AnonRateThrottle on django-redis. A run
lasts seconds, in which a 100/min bucket refills a few requests; a 100/hour policy (one refill per 36 s) shows
the burst alone: exactly 100.

Run:  DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/ratelimit_exactness.py
"""
from __future__ import annotations

import asyncio
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ratelimit_harness import (  # noqa: E402
    bench_tenant,
    disable_other_policies,
    port,
    put_policy,
    servers,
    setup_django,
)

REQUESTS, CLIENTS, PORTS = 1000, 64, [port(31), port(32)]


async def burst(bases: list[str], path: str) -> tuple[int, float]:
    import httpx

    counter = iter(range(REQUESTS))
    allowed = 0
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one_client() -> None:
            nonlocal allowed
            for i in counter:
                response = await client.get(bases[i % len(bases)] + path)
                allowed += response.status_code == 200

        started = time.monotonic()
        await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    return allowed, time.monotonic() - started


def main() -> None:
    setup_django()
    from django.core.cache import cache

    from apps.ratelimit.backends import get_backend
    from apps.ratelimit.keys import state_key

    tenant = bench_tenant()
    limit = {"key_kind": "ip", "algorithm": "gcra", "rate": 100, "burst": None, "mode": "enforce", "enabled": True}
    per_minute = put_policy(tenant=tenant, name="bench-exact", data={
        "match_kind": "route", "match_value": "bench-exact", "period": "minute", **limit})
    per_hour = put_policy(tenant=tenant, name="bench-exact-hour", data={
        "match_kind": "route", "match_value": "bench-exact-hour", "period": "hour", **limit})
    disable_other_policies(tenant=tenant, keep=[per_minute.pk, per_hour.pk])
    for policy in (per_minute, per_hour):
        get_backend().reset(state_key(
            tenant_id=tenant.pk, policy_id=policy.pk, algorithm=policy.algorithm, key="ip:127.0.0.1"))
    cache.delete("throttle_anon_127.0.0.1")  # DRF's key for this client

    with servers(PORTS) as bases:
        bulwark_allowed, bulwark_s = asyncio.run(burst(bases, "/bench/exact"))
        hour_allowed, hour_s = asyncio.run(burst(bases, "/bench/exact-hour"))
        drf_allowed, drf_s = asyncio.run(burst(bases, "/bench/drf"))

    # GCRA grants the burst at once, then one request per 600 ms for as long as the run lasts.
    refill = math.floor(bulwark_s / 0.6)
    print(f"{REQUESTS} requests, {CLIENTS} concurrent clients, {len(PORTS)} uvicorn processes, Redis, 100/min")
    print(f"  Bulwark GCRA (burst 100):      {bulwark_allowed:4d} allowed in {bulwark_s:5.2f} s"
          f"  (exact: 100 + up to {refill} refilled at 1 per 0.6 s)")
    print(f"  Bulwark GCRA, 100/hour:         {hour_allowed:4d} allowed in {hour_s:5.2f} s  (exact: 100)")
    print(f"  DRF AnonRateThrottle (100/min): {drf_allowed:4d} allowed in {drf_s:5.2f} s  (limit 100)")
    print(f"  over the limit: Bulwark {max(0, bulwark_allowed - 100 - refill)}, DRF {max(0, drf_allowed - 100)}")


if __name__ == "__main__":
    main()
