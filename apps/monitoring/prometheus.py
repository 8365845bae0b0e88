"""`/metrics` in the Prometheus text format, built with prometheus-client from the merged state.

Request counters and latency histograms come from the store's cumulative totals (every process of every
host adds to them), so whichever process answers, the figures are the same. Labels: tenant slug (empty for
platform traffic), route pattern (bounded), method, status class.
"""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from apps.core import histogram
from apps.monitoring.aggregate import STATUS_CLASSES

# Fixed `le` bounds (seconds) of the exported histogram; the log buckets behind them are 1 % wide.
LE_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _fmt(value: float) -> str:
    return repr(float(value))


class BulwarkCollector:
    def __init__(self, store=None) -> None:
        self.store = store

    def collect(self):
        yield from self._requests()
        yield from self._system()
        yield from self._apps()

    def _requests(self):
        from apps.monitoring import recorder
        from apps.monitoring.selectors import _store
        from apps.tenancy.models import Tenant

        store = _store(self.store)
        # Through the recorder's StoreGuard: with the store down the other families still answer.
        totals = recorder.sink.read(store.totals, dict)
        slugs = dict(Tenant.objects.filter(pk__in={k[0] for k in totals if k[0] is not None}).values_list("pk", "slug"))
        requests = CounterMetricFamily("bulwark_http_requests", "HTTP requests by route pattern and status class.",
                                       labels=["tenant", "route", "method", "status_class"])
        durations = HistogramMetricFamily("bulwark_http_request_duration_seconds",
                                          "HTTP request duration (first Bulwark middleware to response).",
                                          labels=["tenant", "route", "method"])
        for (tenant_id, route, method), agg in sorted(totals.items(), key=lambda kv: str(kv[0])):
            tenant = slugs.get(tenant_id, "") if tenant_id is not None else ""
            for i in STATUS_CLASSES:
                if agg.classes[i]:
                    requests.add_metric([tenant, route, method, f"{i}xx"], agg.classes[i])
            per_le = [0] * (len(LE_BOUNDS_S) + 1)
            for bucket, n in agg.hist.items():
                per_le[histogram.prometheus_le_of(bucket, LE_BOUNDS_S)] += n
            cumulative, running = [], 0
            for bound, n in zip((*(_fmt(b) for b in LE_BOUNDS_S), "+Inf"), per_le, strict=True):
                running += n
                cumulative.append((bound, running))
            durations.add_metric([tenant, route, method], cumulative, agg.duration_ms_sum / 1000)
        yield requests
        yield durations

    def _system(self):
        from apps.monitoring.selectors import latest_host_samples

        hosts = {sample["host"]: sample for sample in latest_host_samples()}
        gauges = {
            "cpu": GaugeMetricFamily("bulwark_system_cpu_percent", "Host CPU use, %.", labels=["host"]),
            "memory": GaugeMetricFamily("bulwark_system_memory_percent", "Host memory use, %.", labels=["host"]),
            "disk": GaugeMetricFamily("bulwark_system_disk_percent", "Disk use of the data volume, %.", labels=["host"]),
            "redis_memory": GaugeMetricFamily("bulwark_redis_used_memory_bytes", "Redis used_memory.", labels=["host"]),
            "pg_connections": GaugeMetricFamily("bulwark_postgres_connections", "PostgreSQL backends.", labels=["host"]),
        }
        for host, sample in hosts.items():
            gauges["cpu"].add_metric([host], sample["cpu_percent"])
            gauges["memory"].add_metric([host], sample["memory_percent"])
            gauges["disk"].add_metric([host], sample["disk_percent"])
            redis_memory = (sample.get("redis") or {}).get("used_memory")
            if redis_memory is not None:
                gauges["redis_memory"].add_metric([host], redis_memory)
            connections = (sample.get("postgres") or {}).get("connections")
            if connections is not None:
                gauges["pg_connections"].add_metric([host], connections)
        yield from gauges.values()

    def _apps(self):
        from apps.caching.models import CacheStatMinute
        from apps.jobs.models import JobRun
        from apps.ratelimit.models import RateLimitStat
        from apps.resilience.models import BreakerPolicy
        from apps.resilience.selectors import last_transition_annotations

        since = timezone.now() - timedelta(hours=1)
        breakers = GaugeMetricFamily("bulwark_breaker_open", "1 when a breaker's last transition was to open.",
                                     labels=["tenant", "name", "state"])
        for tenant, name, forced, last in (BreakerPolicy.objects.annotate(**last_transition_annotations())
                                           .values_list("tenant__slug", "name", "forced_state", "last_transition_to")):
            state = forced if forced and forced != "none" else (last or "closed")
            breakers.add_metric([tenant, name, state], 1.0 if state in ("open", "forced_open") else 0.0)
        yield breakers
        decisions = GaugeMetricFamily("bulwark_ratelimit_decisions_1h", "Rate-limit decisions of the last hour.",
                                      labels=["tenant", "decision"])
        for row in (RateLimitStat.objects.filter(minute__gte=since).values("tenant__slug")
                    .annotate(allowed=Sum("allowed"), denied=Sum("denied"), shadow=Sum("shadow_denied"))):
            for decision in ("allowed", "denied", "shadow"):
                decisions.add_metric([row["tenant__slug"], decision], row[decision] or 0)
        yield decisions
        ratio = GaugeMetricFamily("bulwark_cache_hit_ratio_1h", "Cache hits / (hits + misses), last hour.",
                                  labels=["tenant"])
        for row in (CacheStatMinute.objects.filter(minute__gte=since).values("tenant__slug")
                    .annotate(hits=Sum("hits"), misses=Sum("misses"))):
            lookups = (row["hits"] or 0) + (row["misses"] or 0)
            if lookups:
                ratio.add_metric([row["tenant__slug"]], (row["hits"] or 0) / lookups)
        yield ratio
        depth = GaugeMetricFamily("bulwark_jobs_queued", "Job runs waiting (queued or retrying).", labels=["tenant"])
        for row in (JobRun.objects.filter(status__in=(JobRun.Status.QUEUED, JobRun.Status.RETRYING))
                    .values("tenant__slug").annotate(n=Count("pk"))):
            depth.add_metric([row["tenant__slug"] or ""], row["n"])
        yield depth


def render(store=None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BulwarkCollector(store))
    return generate_latest(registry)
