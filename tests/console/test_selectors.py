"""What the console's sections carry, from real rows and recorded requests: the policies section (each
rate-limit policy's allowed/denied per minute, each cache policy's hit ratio) and the cards' threshold
states (the tenant's monitoring thresholds over the newest host samples and the last minutes' requests)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.console import selectors
from apps.monitoring.services import thresholds_update
from tests.caching.factories import CacheStatMinuteFactory
from tests.console.conftest import requests, sample
from tests.ratelimit.factories import RateLimitStatFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2027, 1, 15, 12, 0, 30, tzinfo=UTC)


def at(minutes_ago: int) -> datetime:
    return NOW.replace(second=0) - timedelta(minutes=minutes_ago)


def test_policy_figures_are_each_rate_limit_policys_minutes_and_each_cache_policys_hit_ratio(tenant_a, tenant_b):
    login = RateLimitStatFactory(tenant=tenant_a, policy__name="login", minute=at(0), allowed=50, denied=7).policy
    RateLimitStatFactory(tenant=tenant_a, policy=login, minute=at(3), allowed=40, denied=0)
    RateLimitStatFactory(tenant=tenant_a, policy=login, minute=at(10), allowed=999, denied=999)  # 11th minute
    theirs = RateLimitStatFactory(tenant=tenant_b, minute=at(0), allowed=1, denied=1).policy
    items = CacheStatMinuteFactory(tenant=tenant_a, policy__name="items", minute=at(0), hits=5, stale=1, misses=2).policy
    CacheStatMinuteFactory(tenant=tenant_a, policy=items, minute=at(9), hits=1, stale=0, misses=3)
    idle = CacheStatMinuteFactory(tenant=tenant_a, policy__name="idle", minute=at(1)).policy
    figures = selectors.policy_figures(tenant=tenant_a, now=NOW)
    assert figures == {
        f"ratelimit:{login.pk}": {"minutes": [[int(at(3).timestamp()), 40, 0], [int(at(0).timestamp()), 50, 7]]},
        f"caching:{items.pk}": {"hit_ratio": 0.5833, "lookups": 12},  # (6 + 1) served of 12
        f"caching:{idle.pk}": {"hit_ratio": None, "lookups": 0},
    }
    assert f"ratelimit:{theirs.pk}" not in figures


def test_cards_take_the_threshold_state_of_their_figure(sink, tenant_a):
    sample(cpu=80, memory=90)  # the brief's levels: cpu 75/90 -> warning, memory 70/85 -> critical
    sample(cpu=20, memory=20, host="web-2")
    requests(sink, tenant_a, count=100, errors=3, duration_ms=1200)  # 3 % -> warning, p95 1200 ms -> critical
    sections = selectors.metric_sections(tenant=tenant_a)
    health = sections["health"]
    assert {name: (figures["state"], figures["warning"], figures["critical"]) for name, figures in health.items()} == {
        "cpu": ("warning", 75, 90), "memory": ("critical", 70, 85),
        "response_time": ("critical", 500, 1000), "error_rate": ("warning", 2, 5)}
    assert (health["cpu"]["value"], health["memory"]["value"], health["error_rate"]["value"]) == (80, 90, 3)
    assert health["response_time"]["value"] == pytest.approx(1200, rel=0.01)
    cards = sections["cards"]
    assert {name: cards[name] for name in ("cpu", "memory", "response_time", "error_rate", "endpoints")} == {
        "cpu": "warning", "memory": "critical", "response_time": "critical", "error_rate": "warning",
        "endpoints": "critical"}
    # The chart cards take the state of what they draw: latency its p95, traffic its errors, system the worse
    # of CPU and memory.
    assert (cards["latency"], cards["traffic"], cards["system"]) == ("critical", "warning", "critical")


def test_the_tenants_own_thresholds_decide_and_no_data_is_ok(sink, tenant_a, tenant_b):
    sample(cpu=80, memory=60)
    thresholds_update(tenant=tenant_a, data={"cpu_warning_pct": 85, "cpu_critical_pct": 95,
                                             "error_rate_warning_pct": 0.5, "error_rate_critical_pct": 1})
    requests(sink, tenant_a, count=100, errors=1, duration_ms=20)
    cards = selectors.metric_sections(tenant=tenant_a)["cards"]
    assert (cards["cpu"], cards["memory"], cards["error_rate"], cards["response_time"]) == (
        "ok", "ok", "critical", "ok")
    other = selectors.metric_sections(tenant=tenant_b)  # no requests, and the defaults: cpu 80 is a warning
    assert other["health"]["error_rate"] == {**other["health"]["error_rate"], "state": "ok", "value": None}
    assert other["cards"]["cpu"] == "warning" and other["cards"]["system"] == "warning"
