"""Overhead of request monitoring: one trivial DRF endpoint, bare, with Bulwark's monitoring, with
django-prometheus, with django-silk, and behind the whole Bulwark stack (tenant resolution, rate limit on
Redis, cache lookup missing, monitoring), in paired rounds with wrk against one uvicorn process each.

Run:  DATABASE_URL=... REDIS_URL=... BULWARK_PORT_BASE=... .venv/bin/python benchmarks/monitoring_overhead.py
(needs `wrk`). Prints req/s per round, the median and the median of paired ratios against bare.
"""
from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import ratelimit_harness  # noqa: E402
from benchmarks.ratelimit_harness import port, servers  # noqa: E402

# Five servers boot at once on a shared 2-core machine: give each more than the harness's 40 s to start.
ratelimit_harness._wait.__defaults__ = (180,)

STACKS = ("bare", "bulwark", "prometheus", "silk", "whole")
ROUNDS, ROUND_S, CONNECTIONS = 5, 4, 16


def wrk(url: str, server: psutil.Process | None = None) -> tuple[float, float]:
    """(requests/s, server CPU µs per request): CPU per request resists the load others put on the machine."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{ROUND_S}s", "--timeout", "5s", url]
    before = sum(server.cpu_times()[:2]) if server else 0.0
    output = subprocess.run(command, capture_output=True, text=True, timeout=ROUND_S + 30, check=True).stdout
    cpu_s = sum(server.cpu_times()[:2]) - before if server else 0.0
    if "Non-2xx" in output:
        raise RuntimeError(f"non-2xx answers during the run, the measurement would be wrong:\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), cpu_s / max(1, requests) * 1e6


def listener(port_: int) -> psutil.Process:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port_ and conn.pid:
            return psutil.Process(conn.pid)
    raise RuntimeError(f"no process listens on {port_}")


def setup() -> None:
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must be set: the benchmarks run on PostgreSQL and Redis")
    os.environ.update(DJANGO_SETTINGS_MODULE="benchmarks.monitoring_settings", DEBUG="0", SECURE_SSL_REDIRECT="0",
                      SECRET_KEY=os.environ.get("SECRET_KEY", "benchmark-only-secret-key-not-for-production-0123456789"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # silk's tables too
    from apps.caching import services as caching
    from apps.caching.models import CachePolicy
    from apps.tenancy.models import Tenant
    from benchmarks.ratelimit_harness import disable_other_policies, put_policy

    tenant = Tenant.objects.get_or_create(slug=settings.BENCH_TENANT, defaults={"name": "Monitoring benchmark"})[0]
    policy = put_policy(tenant=tenant, name="bench-monitoring", data={
        "match_kind": "route", "match_value": "bench-ping", "key_kind": "ip", "algorithm": "gcra",
        "rate": 1_000_000, "period": "second", "burst": None, "mode": "enforce", "enabled": True})
    disable_other_policies(tenant=tenant, keep=[policy.pk])
    if not CachePolicy.objects.for_tenant(tenant).filter(name="bench-ping").exists():
        caching.policy_create(tenant=tenant, data={"name": "bench-ping", "path_pattern": "^/bench/ping$",
                                                   "ttl_s": 60, "vary_on": "anonymous"})


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("needs wrk (apt-get install wrk)")
    setup()
    ports = [port(60 + i) for i in range(len(STACKS))]
    envs = [{"BENCH_MONITORING_STACK": stack} for stack in STACKS]
    results: dict[str, list[float]] = {stack: [] for stack in STACKS}
    cpu: dict[str, list[float]] = {stack: [] for stack in STACKS}
    with servers(ports, envs) as bases:
        urls = {stack: f"{base}/bench/ping" for stack, base in zip(STACKS, bases, strict=True)}
        processes = {stack: listener(p) for stack, p in zip(STACKS, ports, strict=True)}
        for url in urls.values():
            wrk(url)  # warm-up: imports, pools, snapshots
        for _ in range(ROUNDS):
            for stack in STACKS:
                rps, cpu_us = wrk(urls[stack], processes[stack])
                results[stack].append(rps)
                cpu[stack].append(cpu_us)
    bare, bare_cpu = results["bare"], cpu["bare"]
    print(f"trivial DRF endpoint, 1 uvicorn process per stack, wrk -t2 -c{CONNECTIONS}, {ROUNDS} rounds of "
          f"{ROUND_S} s per stack, stacks interleaved in each round (machine shared: read the paired ratios)")
    for stack in STACKS:
        paired = statistics.median(r / b for r, b in zip(results[stack], bare, strict=True))
        # Throughput a quiet machine would keep, from server CPU per request: bare CPU / stack CPU.
        cpu_ratio = statistics.median(b / c for c, b in zip(cpu[stack], bare_cpu, strict=True) if c)
        rounds = ", ".join(f"{r:6.0f}" for r in results[stack])
        print(f"  {stack:<11} {rounds}  req/s | median {statistics.median(results[stack]):6.0f} | paired ratio to "
              f"bare {paired:.3f} | CPU/request {statistics.median(cpu[stack]):5.0f} µs, ratio {cpu_ratio:.3f}")


if __name__ == "__main__":
    main()
