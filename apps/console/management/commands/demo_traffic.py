"""The demo's background traffic: API calls, breaker outcomes and jobs against a running Bulwark, so a
newcomer's console moves. Started by `make run` (`manage.py serve --demo-traffic`); never otherwise."""
from __future__ import annotations

import logging
import random
import time

import httpx
from django.core.management.base import BaseCommand

from apps.tenancy.models import ApiToken, Tenant
from apps.tenancy.roles import Role
from apps.tenancy.services import token_create, token_revoke

TOKEN_NAME = "demo-traffic"
# Calls of the `api` breaker fail in bursts: it opens about every other minute, then probes close it.
FAILURE_BURST_EVERY_S = 90
FAILURE_BURST_S = 15


class Command(BaseCommand):
    help = "Generate light demo traffic (requests, breaker outcomes, jobs with progress) against a running server."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--tenant", action="append", default=None, help="tenant slug (repeatable; default acme, globex)")
        parser.add_argument("--rps", type=float, default=0.5,
                            help="rounds per second per tenant (a round is 3 requests; the demo's default policy allows 100/min)")
        parser.add_argument("--duration-s", type=float, default=0.0, help="stop after this long (0: until killed)")

    def handle(self, *args, base_url: str, tenant: list[str] | None, rps: float, duration_s: float, **options) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown make run's output
        tenants = list(Tenant.objects.filter(slug__in=tenant or ["acme", "globex"], is_active=True))
        tokens = {t.slug: self._token(t) for t in tenants}
        rng = random.Random(1)
        started = time.monotonic()
        next_job = {slug: 0.0 for slug in tokens}
        self.stdout.write(f"demo traffic: {rps:g} requests/s per tenant against {base_url} for {', '.join(tokens)}")
        with httpx.Client(base_url=base_url, timeout=5.0) as client:
            while not duration_s or time.monotonic() - started < duration_s:
                for slug, token in tokens.items():
                    headers = {"Authorization": f"Bearer {token}"}
                    try:
                        self._tick(client, headers, rng, slug, next_job, started)
                    except httpx.HTTPError as exc:
                        self.stderr.write(f"demo traffic: {exc.__class__.__name__}: {exc}")
                        time.sleep(1.0)
                time.sleep(1.0 / max(rps, 0.1))

    def _token(self, tenant: Tenant) -> str:
        for old in ApiToken.objects.for_tenant(tenant).filter(name=TOKEN_NAME, revoked_at__isnull=True):
            token_revoke(token=old)
        return token_create(tenant=tenant, name=TOKEN_NAME, role=Role.OPERATOR)[1]

    def _tick(self, client: httpx.Client, headers: dict, rng: random.Random, slug: str, next_job: dict,
              started: float) -> None:
        path = rng.choice(["/api/v1/jobs/", "/api/v1/caching/policies/", "/api/v1/ratelimit/policies",
                           "/api/v1/monitoring/endpoints", "/api/v1/me/"])
        client.get(path, headers=headers)
        in_burst = (time.monotonic() - started) % FAILURE_BURST_EVERY_S < FAILURE_BURST_S
        outcome = "failure" if in_burst and rng.random() < 0.8 else "success"
        client.post("/api/v1/resilience/breakers/api/report/", headers=headers,
                    json={"outcome": outcome, "duration_ms": rng.uniform(5, 80)})
        client.post("/api/v1/resilience/breakers/payments/report/", headers=headers,
                    json={"outcome": "failure" if rng.random() < 0.1 else "success", "duration_ms": rng.uniform(50, 900)})
        if time.monotonic() >= next_job[slug]:
            next_job[slug] = time.monotonic() + 20
            client.post("/api/v1/jobs/", headers=headers,
                        json={"type": "console.demo_work", "params": {"steps": 10, "step_s": 1.0}})
