"""Shared by the rate-limit benchmarks: Django set up on PostgreSQL + Redis, and uvicorn processes to measure."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TENANT_SLUG = "bench-ratelimit"


def port(offset: int) -> int:
    """A port of the rate-limit range: BULWARK_PORT_BASE (default 18300) + offset, so checkouts that run the
    tests or benchmarks side by side on one machine each give their own range and never collide."""
    return int(os.environ.get("BULWARK_PORT_BASE", "18300")) + offset


def setup_django() -> None:
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must be set: the benchmarks run on PostgreSQL and Redis")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="benchmarks.ratelimit_settings",
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY", "benchmark-only-secret-key-not-for-production-0123456789"),
        SECURE_SSL_REDIRECT="0",
        BULWARK_RATELIMIT_ANONYMOUS_TENANT=TENANT_SLUG,
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_tenant():
    from apps.tenancy.models import Tenant

    return Tenant.objects.get_or_create(slug=TENANT_SLUG, defaults={"name": "Rate-limit benchmark"})[0]


def put_policy(*, tenant, name: str, data: dict):
    from apps.ratelimit import services
    from apps.ratelimit.models import RateLimitPolicy

    existing = RateLimitPolicy.objects.for_tenant(tenant).filter(name=name).first()
    if existing is not None:
        return services.policy_update(policy=existing, data=data)
    return services.policy_create(tenant=tenant, data={"name": name, **data})


def disable_other_policies(*, tenant, keep: list) -> None:
    """Per object, through the service: policies are audited, and the audit refuses bulk updates."""
    from apps.ratelimit import services
    from apps.ratelimit.models import RateLimitPolicy

    for policy in RateLimitPolicy.objects.for_tenant(tenant).filter(enabled=True).exclude(pk__in=keep):
        services.policy_update(policy=policy, data={"enabled": False})


def _wait(port: int, process: subprocess.Popen, timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


@contextmanager
def servers(ports: list[int], extra_env: list[dict] | None = None):
    """One uvicorn process per port (127.0.0.1 only), stopped on exit whatever happens (tests use it too)."""
    processes = []
    try:
        for i, port in enumerate(ports):
            env = {**os.environ, **((extra_env or [{}] * len(ports))[i])}
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "error", "--no-access-log"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for port, process in zip(ports, processes, strict=True):
            _wait(port, process)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
