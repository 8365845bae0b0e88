"""Diagnosis from what the other apps already count: cache policies' hit ratios, breakers' transitions,
rate limits' decisions, and the system samples of monitoring (saturation, route `-`)."""
from __future__ import annotations

import statistics
from datetime import datetime
from functools import lru_cache

from django.db import connection
from django.db.models import Count, Sum
from django.urls import URLPattern, URLResolver, get_resolver

from apps.caching.models import CacheStatMinute
from apps.monitoring.models import SystemSample
from apps.optimization.conf import optimization_settings as conf
from apps.optimization.conf import saturation_pct
from apps.optimization.findings import Candidate
from apps.optimization.models import SYSTEM_ROUTE
from apps.ratelimit.models import PERIOD_S, RateLimitPolicy, RateLimitStat
from apps.resilience.models import BreakerEvent


@lru_cache(maxsize=8)
def _routes_by_name(resolver) -> dict[str, str]:
    """URL name (bare and namespaced) -> its full route pattern, per URLconf (get_resolver() is memoised)."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str, namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, prefix + str(entry.pattern), inner)
            elif isinstance(entry, URLPattern) and entry.name:
                route = prefix + str(entry.pattern)
                found.setdefault(f"{namespace}{entry.name}", route)
                found.setdefault(entry.name, route)

    walk(resolver.url_patterns, "", "")
    return found


def route_of_name(name: str) -> str:
    return _routes_by_name(get_resolver()).get(name, SYSTEM_ROUTE)


def _scope(queryset, tenant_id):
    return queryset if tenant_id is ... else queryset.filter(tenant_id=tenant_id)


def cache_findings(*, since: datetime, until: datetime, tenant_id) -> list[Candidate]:
    rows = (_scope(CacheStatMinute.objects, tenant_id)
            .filter(minute__gte=since, minute__lte=until, policy__enabled=True)
            .values("policy_id", "policy__name", "policy__route_name", "policy__path_pattern", "policy__ttl_s",
                    "policy__vary_on", "tenant_id")
            .annotate(hits=Sum("hits"), misses=Sum("misses"), stale=Sum("stale")))
    found = []
    for row in rows:
        served = row["hits"] + row["stale"]
        total = served + row["misses"]
        if total < conf.MIN_SAMPLES:
            continue
        ratio = served / total
        if ratio >= conf.CACHE_POOR_HIT_RATIO:
            continue
        ttl = row["policy__ttl_s"]
        new_ttl = min(ttl * 4, 3600)
        route = route_of_name(row["policy__route_name"]) if row["policy__route_name"] else SYSTEM_ROUTE
        found.append(Candidate(
            kind="cache_poor_hit_ratio", route=route, method="GET" if route != SYSTEM_ROUTE else "",
            tenant_id=row["tenant_id"], subject=f"cache policy {row['policy__name']}"[:255],
            summary=f"policy {row['policy__name']}: hit ratio {ratio:.0%} over {total} lookups "
                    f"(ttl {ttl} s, vary on {row['policy__vary_on']})",
            recommendation=f"Cache policy {row['policy__name']} misses most lookups: entries expire before they "
                           f"are reused (ttl {ttl} s) or the key varies too much (vary on {row['policy__vary_on']}, "
                           f"query parameters). Applying raises the TTL to {new_ttl} s.",
            evidence={"policy": row["policy__name"], "hits": row["hits"], "stale": row["stale"],
                      "misses": row["misses"], "hit_ratio": round(ratio, 4), "ttl_s": ttl,
                      "path_pattern": row["policy__path_pattern"]},
            impact=f"{row['misses']} origin calls in the window",
            fix={"policy": "cache", "update": row["policy_id"], "data": {"ttl_s": new_ttl}}))
    return found


def breaker_findings(*, since: datetime, until: datetime, tenant_id) -> list[Candidate]:
    rows = (_scope(BreakerEvent.objects, tenant_id).filter(at__gte=since, at__lte=until, to_state="open")
            .values("tenant_id", "name").annotate(opens=Count("pk")))
    found = []
    for row in rows:
        if row["opens"] < 3:
            continue
        from apps.resilience.models import BreakerPolicy

        policy = BreakerPolicy.objects.filter(tenant_id=row["tenant_id"], name=row["name"]).first()
        fix = {}
        if policy is not None:
            fix = {"policy": "breaker", "update": policy.pk,
                   "data": {"open_duration_multiplier": max(policy.open_duration_multiplier, 2.0),
                            "minimum_calls": min(policy.minimum_calls * 2, 10_000), "half_open_mode": "rates"}}
        found.append(Candidate(
            kind="breaker_flapping", route=SYSTEM_ROUTE, tenant_id=row["tenant_id"], subject=row["name"],
            summary=f"breaker {row['name']} opened {row['opens']} times in the window",
            recommendation=f"Breaker {row['name']} keeps opening and closing: each close lets a burst of calls "
                           "fail again. Back off longer after repeated opens (open_duration_multiplier 2), judge "
                           "half-open on rates over several probes, and require more calls before opening.",
            evidence={"breaker": row["name"], "opens": row["opens"]}, impact="fewer failure bursts", fix=fix))
    return found


def ratelimit_findings(*, since: datetime, until: datetime, tenant_id) -> list[Candidate]:
    rows = (_scope(RateLimitStat.objects, tenant_id).filter(minute__gte=since, minute__lte=until, policy__enabled=True)
            .values("policy_id", "tenant_id")
            .annotate(allowed=Sum("allowed"), denied=Sum("denied"), shadow=Sum("shadow_denied")))
    found = []
    minutes = max((until - since).total_seconds() / 60, 1)
    for row in rows:
        policy = RateLimitPolicy.objects.get(pk=row["policy_id"])
        route = route_of_name(policy.route_list[0]) if policy.match_kind == "route" and policy.route_list else SYSTEM_ROUTE
        total = row["allowed"] + row["shadow"]
        decided = total + row["denied"]
        if decided < conf.MIN_SAMPLES:
            continue
        if policy.mode == RateLimitPolicy.Mode.SHADOW and row["shadow"] and row["shadow"] / total >= 0.01:
            share = row["shadow"] / total
            found.append(Candidate(
                kind="ratelimit_shadow_impact", route=route, tenant_id=row["tenant_id"],
                subject=f"rate limit {policy.name}",
                summary=f"shadow policy {policy.name} ({policy.rate}/{policy.period}) would deny {share:.1%} "
                        f"({row['shadow']} of {total} requests)",
                recommendation=f"Enforcing {policy.name} as it is would refuse {share:.1%} of these requests. "
                               "If they are abuse, enforce it (applying does); if not, raise its rate first.",
                evidence={"policy": policy.name, "would_deny": row["shadow"], "requests": total,
                          "share": round(share, 4)},
                impact=f"{share:.1%} of requests refused once enforced",
                fix={"policy": "ratelimit", "update": policy.pk, "data": {"mode": "enforce"}}))
        elif policy.mode == RateLimitPolicy.Mode.ENFORCE and not row["denied"] and not row["shadow"]:
            per_minute_limit = policy.rate * 60 / PERIOD_S[policy.period]
            peak = (_scope(RateLimitStat.objects, tenant_id)
                    .filter(policy_id=policy.pk, minute__gte=since, minute__lte=until)
                    .order_by("-allowed").values_list("allowed", flat=True).first() or 0)
            if peak >= per_minute_limit * 0.1:
                continue  # some key may come near the limit: it is not shown to be idle
            found.append(Candidate(
                kind="ratelimit_never_triggers", route=route, tenant_id=row["tenant_id"],
                subject=f"rate limit {policy.name}",
                summary=f"policy {policy.name} ({policy.rate}/{policy.period}) denied nothing in {row['allowed']} "
                        f"requests; busiest minute {peak} requests for all keys together "
                        f"({peak / per_minute_limit:.1%} of one key's limit)",
                recommendation=f"{policy.name} never comes near its limit: even all callers together use under "
                               f"10 % of one caller's allowance, so it protects nothing. Lower it to a few times "
                               f"the real peak ({max(peak * 3, 1):.0f} per minute) or remove it.",
                evidence={"policy": policy.name, "allowed": row["allowed"], "peak_minute": peak,
                          "limit_per_minute": per_minute_limit, "minutes": round(minutes)},
                severity="info", impact="a limit that would actually stop a flood",
                fix={"change": f"lower {policy.name} to about {max(peak * 3, 1):.0f} per minute"}))
    return found


def _max_connections() -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


def saturation_findings(*, since: datetime, until: datetime) -> list[Candidate]:
    samples = list(SystemSample.objects.filter(taken_at__gte=since, taken_at__lte=until).order_by("taken_at"))
    if len(samples) < 3:
        return []
    found = []

    def system(kind: str, summary: str, advice: str, evidence: dict) -> Candidate:
        return Candidate(kind=kind, route=SYSTEM_ROUTE, tenant_id=None, summary=summary, recommendation=advice,
                         evidence={"samples": len(samples), **evidence}, severity="critical")

    cpu = statistics.median(s.cpu_percent for s in samples)
    if cpu >= saturation_pct("CPU"):
        found.append(system("cpu_saturation", f"CPU median {cpu:.0f} % over {len(samples)} samples",
                            "The hosts' CPU is saturated: add workers or hosts, or fix the CPU-hot routes first.",
                            {"cpu_percent_median": cpu}))
    memory = statistics.median(s.memory_percent for s in samples)
    if memory >= saturation_pct("MEMORY"):
        found.append(system("memory_saturation", f"memory median {memory:.0f} % over {len(samples)} samples",
                            "Memory is nearly exhausted: find the growing processes (RSS in the samples) or add "
                            "memory before the OOM killer chooses.", {"memory_percent_median": memory}))
    limit = _max_connections()
    used = [(s.data.get("postgres") or {}).get("connections") for s in samples]
    used = [u for u in used if isinstance(u, int | float)]
    if limit and used and statistics.median(used) >= limit * saturation_pct("DB_CONNECTION") / 100:
        found.append(system("db_connection_saturation",
                            f"PostgreSQL connections median {statistics.median(used):.0f} of max {limit}",
                            "The database is running out of connections: lower BULWARK_DB_POOL_MAX_SIZE per "
                            "process, put PgBouncer in front, or raise max_connections.",
                            {"connections_median": statistics.median(used), "max_connections": limit}))
    ages = [((s.taken_at - samples[0].taken_at).total_seconds(), (s.data.get("jobs") or {}).get("oldest_age_s"))
            for s in samples]
    ages = [(t, a) for t, a in ages if isinstance(a, int | float)]
    if len(ages) >= 3 and ages[-1][0] > ages[0][0]:
        growth = (ages[-1][1] - ages[0][1]) / (ages[-1][0] - ages[0][0])
        depth = [(s.data.get("jobs") or {}).get("queue_depth") or 0 for s in samples]
        if growth >= 0.5 and ages[-1][1] >= 60 and depth[-1] >= depth[0]:
            found.append(system("job_queue_backlog",
                                f"oldest queued job {ages[-1][1]:.0f} s old, growing {growth:.2f} s per s; "
                                f"queue depth {depth[0]} -> {depth[-1]}",
                                "Jobs arrive faster than the workers drain them: add workers "
                                "(BULWARK_Q_WORKERS) or move slow job types to their own queue.",
                                {"oldest_age_s": ages[-1][1], "age_growth_per_s": round(growth, 3),
                                 "queue_depth": depth[-1]}))
    return found
