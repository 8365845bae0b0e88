"""Issue 16 part 3 and issue 13 item 16: the bugs an outside replay found, each pinned before its fix."""
from __future__ import annotations

import logging

import pytest
from django.db import connection

from apps.core import health
from apps.resilience.models import BreakerPolicy, DependencyMinute
from apps.resilience.runtime import get_breaker, policy_snapshot
from tests.resilience.factories import BreakerPolicyFactory

BASE = "/api/v1/resilience"


@pytest.fixture
def operator(token_client, tenant_a):
    return token_client(tenant_a, "operator")


def trip(client, name: str, n: int) -> None:
    for _ in range(n):
        response = client.post(f"{BASE}/breakers/{name}/report/", {"outcome": "failure", "duration_ms": 5},
                               format="json")
        assert response.status_code == 202


def test_ignored_probe_outcomes_give_the_ticket_back_instead_of_closing(operator, tenant_a, fresh_registry, clock):
    BreakerPolicyFactory(tenant=tenant_a, name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=4)
    trip(operator, "p", 2)
    fresh_registry.flush_all()
    clock.advance(10)
    for _ in range(4):
        decision = operator.post(f"{BASE}/breakers/p/acquire/").json()
        assert decision["probe"] is True
        response = operator.post(f"{BASE}/breakers/p/report/",
                                 {"outcome": "ignored", "duration_ms": 3, "probe": True,
                                  "ticket": decision["ticket"]}, format="json")
        assert response.status_code == 202
    assert operator.get(f"{BASE}/breakers/p/").json()["shared_state"] == "half_open"
    # Every ticket came back: four more probes may be taken.
    assert all(operator.post(f"{BASE}/breakers/p/acquire/").json()["probe"] for _ in range(4))


def test_ignored_exceptions_of_the_python_door_do_not_close_a_half_open_breaker(fresh_registry, db, tenant_a,
                                                                                clock):
    BreakerPolicyFactory(tenant=tenant_a, name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=2,
                         ignored_exceptions=["builtins.LookupError"])
    breaker = get_breaker("p", tenant_a)
    for _ in range(2):
        breaker.record(breaker.acquire(), "failure", duration_s=0.01)
    fresh_registry.flush_all()
    clock.advance(10)
    for _ in range(2):
        permit = breaker.acquire()
        assert permit.probe
        breaker.record(permit, breaker.config.classify(LookupError("not found")), duration_s=0.01)
    assert breaker.sync().state == "half_open"


def test_disabled_counts_nothing_reported_through_the_api(operator, tenant_a, fresh_registry, committed):
    from apps.resilience import services

    policy = BreakerPolicyFactory(tenant=tenant_a, name="p", consecutive_failures=5, open_duration_s=10)
    committed(services.breaker_force, policy=policy, forced_state="disabled")
    assert operator.post(f"{BASE}/breakers/p/acquire/").json()["permitted"] is True
    assert get_breaker("p", tenant_a).pending.calls == 0
    trip(operator, "p", 6)
    assert get_breaker("p", tenant_a).pending.calls == 0
    fresh_registry.flush_all()
    live = operator.get(f"{BASE}/breakers/p/").json()
    assert (live["state"], live["shared_state"], live["calls"]) == ("disabled", "closed", 0)
    assert not DependencyMinute.objects.filter(name="p").exists()


def test_a_call_of_exactly_the_slow_duration_is_not_slow(operator, tenant_a, fresh_registry):
    BreakerPolicyFactory(tenant=tenant_a, name="p", window_size=10, minimum_calls=2, slow_call_duration_ms=500,
                         slow_call_rate_threshold_pct=50)
    for duration_ms in (500, 500, 500, 501):
        operator.post(f"{BASE}/breakers/p/report/", {"outcome": "success", "duration_ms": duration_ms},
                      format="json")
    fresh_registry.flush_all()
    live = operator.get(f"{BASE}/breakers/p/").json()
    assert (live["state"], live["calls"], live["slow_calls"]) == ("closed", 4, 1)


def test_an_unimportable_exception_path_disables_only_its_own_policy(operator, tenant_a, fresh_registry, caplog):
    BreakerPolicyFactory(tenant=tenant_a, name="good", consecutive_failures=2)
    broken = BreakerPolicyFactory(tenant=tenant_a, name="broken")
    # A deploy renamed the class after the policy was saved (validation at save cannot see the future).
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {BreakerPolicy._meta.db_table} SET failure_exceptions = %s WHERE id = %s",
                       ['["tests.resilience.gone.RenamedError"]', broken.pk])
    policy_snapshot.clear()
    with caplog.at_level(logging.ERROR):
        decision = operator.post(f"{BASE}/breakers/good/acquire/").json()
    assert decision["permitted"] is True and get_breaker("good", tenant_a).config.consecutive_failures == 2
    assert "resilience:policies" not in health.degraded_components()
    assert f"resilience:policy:{tenant_a.pk}:broken" in health.degraded_components()
    assert "'broken'" in caplog.text and "tests.resilience.gone" in caplog.text
    response = operator.post(f"{BASE}/breakers/broken/acquire/")
    assert response.status_code == 503 and response.json()["code"] == "policy_degraded"
    assert "cannot be compiled" in response.json()["message"]


def test_an_unimportable_exception_path_is_a_400_on_its_field_at_save(token_client, tenant_a):
    client = token_client(tenant_a, "admin")
    response = client.post(f"{BASE}/policies/", {"name": "p", "ignored_exceptions": ["nowhere.Gone"]},
                           format="json")
    assert response.status_code == 400 and "ignored_exceptions" in response.json()["errors"]
    assert not BreakerPolicy.objects.filter(name="p").exists()


def test_a_probe_reported_after_its_ticket_expired_is_refused_and_counted_as_ignored(
    operator, tenant_a, fresh_registry, clock, settings
):
    from apps.resilience.conf import resilience_settings

    BreakerPolicyFactory(tenant=tenant_a, name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=1)
    trip(operator, "p", 2)
    fresh_registry.flush_all()
    clock.advance(10)
    decision = operator.post(f"{BASE}/breakers/p/acquire/").json()
    assert decision["probe"] is True
    clock.advance(resilience_settings.PROBE_TIMEOUT_S + 120)  # minutes later
    response = operator.post(f"{BASE}/breakers/p/report/", {"outcome": "success", "duration_ms": 3, "probe": True,
                                                            "ticket": decision["ticket"]}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "probe_expired"
    assert operator.get(f"{BASE}/breakers/p/").json()["shared_state"] == "half_open"
    fresh_registry.write_db()
    minute = DependencyMinute.objects.get(name="p", ignored__gt=0)
    assert minute.ignored == 1


def test_a_probe_without_a_ticket_id_is_refused_once_every_ticket_expired(operator, tenant_a, fresh_registry, clock):
    from apps.resilience.conf import resilience_settings

    BreakerPolicyFactory(tenant=tenant_a, name="p", consecutive_failures=2, open_duration_s=10, half_open_probes=1)
    trip(operator, "p", 2)
    fresh_registry.flush_all()
    clock.advance(10)
    assert operator.post(f"{BASE}/breakers/p/acquire/").json()["probe"] is True
    clock.advance(resilience_settings.PROBE_TIMEOUT_S)
    response = operator.post(f"{BASE}/breakers/p/report/", {"outcome": "success", "duration_ms": 3, "probe": True},
                             format="json")
    assert response.status_code == 409
    assert operator.get(f"{BASE}/breakers/p/").json()["shared_state"] == "half_open"
