"""Overhead of a closed breaker: calls per second through a decorated no-op function, Bulwark on the memory
backend and on Redis beside pybreaker in memory and pybreaker on its Redis storage, in one run, alternating
rounds; prints each median and the ratios.

Run:  DATABASE_URL=... REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python benchmarks/resilience_overhead.py
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ROUNDS, ROUND_S = 5, 1.0


def calls_per_s(fn) -> float:
    for _ in range(2000):  # warm-up: compile the snapshot, load scripts, fill pools
        fn()
    n, started = 0, time.perf_counter()
    deadline = started + ROUND_S
    while True:
        for _ in range(500):
            fn()
        n += 500
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - started)


def main() -> None:
    import django

    django.setup()
    import pybreaker
    import redis
    from django.db import transaction

    from apps.core import context
    from apps.core.context import RequestContext
    from apps.resilience import decorators, services
    from apps.resilience.backends.memory import MemoryBackend
    from apps.resilience.backends.redis import RedisBackend
    from apps.resilience.models import BreakerPolicy
    from apps.resilience.runtime import Registry
    from apps.tenancy.models import Tenant

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        sys.exit("needs REDIS_URL (the Redis variants are half of the comparison)")
    with transaction.atomic():
        tenant, _ = Tenant.objects.get_or_create(slug="bench-resilience", defaults={"name": "Benchmark"})
        if not BreakerPolicy.objects.for_tenant(tenant).filter(name="payments").exists():
            services.policy_create(model=BreakerPolicy, tenant=tenant, data={"name": "payments", "consecutive_failures": 5})

    def bulwark(registry):
        decorators.registry = registry

        @decorators.breaker("payments")
        def call():
            return None

        return call

    memory_registry = Registry(backend=MemoryBackend())
    redis_registry = Registry(backend=RedisBackend())
    client = redis.Redis.from_url(redis_url)
    redis_storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace="bench-resilience")
    variants = {
        "Bulwark memory": lambda: bulwark(memory_registry),
        "Bulwark Redis": lambda: bulwark(redis_registry),
        "pybreaker memory": lambda: pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)(lambda: None),
        "pybreaker Redis": lambda: pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60,
                                                            state_storage=redis_storage)(lambda: None),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    with context.bind(RequestContext(tenant=tenant)):  # as in a view: the tenant's compiled policy applies
        for _ in range(ROUNDS):
            for name, make in variants.items():
                results[name].append(calls_per_s(make()))
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"closed breaker, calls/s (median of {ROUNDS} rounds of {ROUND_S} s, one thread, same process)")
    for name, value in median.items():
        print(f"  {name:18s} {value:12,.0f} calls/s   {1e6 / value:8.2f} µs/call")
    print("ratios")
    print(f"  Bulwark Redis  / pybreaker memory : {median['Bulwark Redis'] / median['pybreaker memory']:6.2f}x"
          "   (aim: >= 0.5, within 2x)")
    print(f"  Bulwark Redis  / pybreaker Redis  : {median['Bulwark Redis'] / median['pybreaker Redis']:6.1f}x"
          "   (aim: > 20x)")
    print(f"  Bulwark memory / pybreaker memory : {median['Bulwark memory'] / median['pybreaker memory']:6.2f}x")
    print(f"  Bulwark Redis  / Bulwark memory   : {median['Bulwark Redis'] / median['Bulwark memory']:6.2f}x")


if __name__ == "__main__":
    main()
