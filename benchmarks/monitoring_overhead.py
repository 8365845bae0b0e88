"""Overhead of request monitoring: one trivial DRF endpoint, bare, with Bulwark's monitoring, with
django-prometheus, with django-silk, and behind the whole Bulwark stack (tenant resolution, rate limit on
Redis, cache lookup missing, monitoring), in paired rounds, two ways:

1. in process: the five middleware stacks built side by side in one Python process and called through
   Django's WSGI handler, interleaved round by round; process CPU per request (all threads, the stats
   flusher's included). No server, network or load generator in the figure, so it holds on a shared machine.
2. over HTTP: wrk against one uvicorn process per stack; req/s and server CPU per request.

Run:  DATABASE_URL=... REDIS_URL=... BULWARK_PORT_BASE=... .venv/bin/python benchmarks/monitoring_overhead.py
[--only in-process|http] (HTTP needs `wrk`). Prints per stack the medians and the median of paired ratios to
bare (throughput ratio = bare CPU per request / stack CPU per request).
"""
from __future__ import annotations

import argparse
import io
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


IN_PROCESS_ROUNDS, IN_PROCESS_REQUESTS = 15, 1500


def in_process() -> None:
    """Every stack's WSGI handler in this process, called in interleaved rounds; CPU per request."""
    import time

    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    from benchmarks.monitoring_settings import STACKS as MIDDLEWARE_OF

    def environ() -> dict:
        return {"REQUEST_METHOD": "GET", "PATH_INFO": "/bench/ping", "QUERY_STRING": "", "SERVER_NAME": "localhost",
                "SERVER_PORT": "80", "HTTP_HOST": "localhost", "REMOTE_ADDR": "127.0.0.1",
                "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}

    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    handlers = {}
    for stack in STACKS:
        with override_settings(MIDDLEWARE=MIDDLEWARE_OF[stack]):
            handlers[stack] = WSGIHandler()

    def run(handler, n: int) -> float:
        statuses.clear()
        start = time.process_time()
        for _ in range(n):
            handler(environ(), start_response).close()
        spent = time.process_time() - start
        if any(not s.startswith("200") for s in statuses):
            raise RuntimeError(f"non-200 answers: {sorted(set(statuses))}")
        return spent / n * 1e6

    for handler in handlers.values():
        run(handler, 300)  # warm-up: imports, pools, snapshots
    cpu: dict[str, list[float]] = {stack: [] for stack in STACKS}
    for _ in range(IN_PROCESS_ROUNDS):
        for stack in STACKS:
            cpu[stack].append(run(handlers[stack], IN_PROCESS_REQUESTS))
    print(f"in process: {IN_PROCESS_ROUNDS} rounds x {IN_PROCESS_REQUESTS} requests per stack, stacks interleaved "
          f"in each round, process CPU per request (machine shared: read the paired ratios)")
    for stack in STACKS:
        ratio = statistics.median(b / c for b, c in zip(cpu["bare"], cpu[stack], strict=True))
        print(f"  {stack:<11} CPU/request median {statistics.median(cpu[stack]):6.1f} µs | paired throughput ratio "
              f"to bare {ratio:.3f}")


def over_http() -> None:
    if shutil.which("wrk") is None:
        sys.exit("needs wrk (apt-get install wrk)")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("in-process", "http"))
    only = parser.parse_args().only
    setup()
    if only != "http":
        in_process()
    if only != "in-process":
        over_http()


if __name__ == "__main__":
    main()
