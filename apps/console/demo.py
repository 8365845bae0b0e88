"""Demo history for the console (idempotent): traffic of the last hour and system samples of the last days,
so the charts of a fresh `make run` are drawn at once; the traffic generator (`demo_traffic`) keeps them moving."""
from __future__ import annotations

import contextlib
import math
import random
import time
from datetime import UTC, datetime, timedelta

from apps.analytics import services as analytics
from apps.core.errors import ApplicationError
from apps.monitoring.aggregate import MinuteAgg
from apps.monitoring.models import EndpointRollup, SystemSample
from apps.monitoring.services import rollup_add, sample_record

DEMO_HOST = "demo-host"
# (route, method, requests per minute, median ms, share of 5xx)
DEMO_ROUTES = [
    ("api/v1/jobs/", "GET", 240, 18.0, 0.002),
    ("api/v1/ratelimit/check", "POST", 900, 4.0, 0.0),
    ("api/v1/resilience/breakers/<str:name>/report/", "POST", 300, 6.0, 0.01),
    ("api/v1/caching/policies/", "GET", 120, 35.0, 0.004),
]
HISTORY_MINUTES = 60
SAMPLE_DAYS = 3


def _minute_agg(rng: random.Random, per_minute: int, median_ms: float, error_share: float, wave: float) -> MinuteAgg:
    agg = MinuteAgg()
    for _ in range(max(1, int(per_minute * wave))):
        status_class = 5 if rng.random() < error_share * wave else 2
        agg.add(status_class, rng.lognormvariate(math.log(median_ms * wave), 0.6), median_ms * 0.3, 3, 900)
    return agg


def seed_traffic(*, tenant, now: float | None = None) -> int:
    now = time.time() if now is None else now
    first = datetime.fromtimestamp((int(now) // 60 - HISTORY_MINUTES) * 60, tz=UTC)
    if EndpointRollup.objects.filter(endpoint__tenant=tenant, start__gte=first).exists():
        return 0
    rng = random.Random(tenant.pk)
    batch = {}
    for i in range(HISTORY_MINUTES):
        minute = int(now) // 60 - HISTORY_MINUTES + i
        wave = 1.0 + 0.35 * math.sin(i / 9.0)
        for route, method, per_minute, median_ms, error_share in DEMO_ROUTES:
            # a tenth of the traffic keeps the seed quick; the shape is what the charts need
            batch[(tenant.pk, route, method, minute)] = _minute_agg(rng, per_minute // 10, median_ms, error_share, wave)
    return rollup_add(batch=batch)


def seed_samples(*, now: datetime | None = None) -> int:
    """Platform samples of one demo host, every 10 minutes for SAMPLE_DAYS days (a daily cycle)."""
    now = now or datetime.now(tz=UTC)
    if SystemSample.objects.filter(host=DEMO_HOST, taken_at__gte=now - timedelta(hours=1)).exists():
        return 0
    rng = random.Random(7)
    count = 0
    at = now - timedelta(days=SAMPLE_DAYS)
    while at <= now:
        day = (at.hour + at.minute / 60) / 24 * 2 * math.pi
        cpu = 35 + 20 * math.sin(day - 1.5) + rng.uniform(-4, 4)
        memory = 55 + 8 * math.sin(day - 1.0) + rng.uniform(-2, 2)
        sample_record(host=DEMO_HOST, taken_at=at,
                      figures={"cpu_percent": round(cpu, 1), "memory_percent": round(memory, 1), "disk_percent": 41.0})
        at += timedelta(minutes=10)
        count += 1
    return count


def seed(*, tenant, stdout=None) -> None:
    rows = seed_traffic(tenant=tenant)
    samples = seed_samples()
    for series in ("cpu_percent", "memory_percent"):
        # Too little history: the chart draws without a band.
        with contextlib.suppress(ApplicationError):
            analytics.forecast_refresh(tenant=tenant, series=series, horizon=12)
    if stdout is not None:
        stdout.write(f"  console: {rows} endpoint-minutes of history, {samples} system samples, "
                     f"CPU/memory forecasts where the history allows, for {tenant.slug}")
