"""The decision service: strictest wins, shadow mode, store outage and recovery, stats, reset, demo."""
from __future__ import annotations

import logging
import time

import pytest
from django.test import override_settings

from apps.audit.models import AuditEvent
from apps.core import health
from apps.ratelimit import decision, services, stats
from apps.ratelimit.backends.memory import MemoryBackend
from apps.ratelimit.backends.redis import RedisBackend
from apps.ratelimit.decision import Descriptor, Target
from apps.ratelimit.matching import compile_policy
from apps.ratelimit.models import RateLimitPolicy, RateLimitStat
from tests.ratelimit.factories import RateLimitPolicyFactory

pytestmark = pytest.mark.django_db


def targets(*policies, key="user:1"):
    return [Target(compile_policy(p), key) for p in policies]


def test_strictest_policy_decides_and_every_policy_is_counted(tenant_a, clock):
    backend = MemoryBackend(clock=clock)
    wide = RateLimitPolicyFactory(tenant=tenant_a, name="wide", rate=100)
    narrow = RateLimitPolicyFactory(tenant=tenant_a, name="narrow", rate=2)
    first = decision.decide(targets=targets(wide, narrow), backend=backend)
    assert first.allowed and first.deciding.policy.name == "narrow"
    decision.decide(targets=targets(wide, narrow), backend=backend)
    third = decision.decide(targets=targets(wide, narrow), backend=backend)
    assert not third.allowed and third.deciding.policy.name == "narrow"
    assert third.retry_after_s == 30
    stats.flush()
    counts = {s.policy.name: (s.allowed, s.denied) for s in RateLimitStat.objects.select_related("policy")}
    assert counts == {"wide": (3, 0), "narrow": (2, 1)}


def test_shadow_policy_counts_but_never_blocks(tenant_a, clock):
    backend = MemoryBackend(clock=clock)
    shadow = RateLimitPolicyFactory(tenant=tenant_a, name="shadow", rate=1, mode="shadow")
    decisions = [decision.decide(targets=targets(shadow), backend=backend) for _ in range(3)]
    assert all(d.allowed for d in decisions)
    assert decisions[0].deciding is None  # a shadow policy never decides a request
    assert [d.policies[0].outcome.allowed for d in decisions] == [True, False, False]
    stats.flush()
    stat = RateLimitStat.objects.get(policy=shadow)
    assert (stat.allowed, stat.denied, stat.shadow_denied) == (1, 0, 2)


def test_stats_accumulate_across_flushes(tenant_a, clock):
    backend = MemoryBackend(clock=clock)
    policy = RateLimitPolicyFactory(tenant=tenant_a, rate=100)
    for _ in range(3):
        decision.decide(targets=targets(policy), backend=backend)
        stats.flush()
    assert RateLimitStat.objects.get(policy=policy).allowed == 3


def test_check_by_name_and_by_match_attributes(tenant_a, clock):
    backend = MemoryBackend(clock=clock)
    RateLimitPolicyFactory(tenant=tenant_a, name="expensive", match_kind="named", rate=5)
    RateLimitPolicyFactory(tenant=tenant_a, name="writes", match_kind="any", methods="POST", rate=3)
    by_name = decision.check(tenant=tenant_a, descriptors=[Descriptor(key="c1", policy="expensive", hits=5)],
                             backend=backend)
    assert by_name.allowed and by_name.deciding.outcome.remaining == 0
    matched = decision.check(tenant=tenant_a, descriptors=[Descriptor(key="c1", method="post")], backend=backend)
    assert [d.policy.name for d in matched.policies] == ["writes"]
    unmatched = decision.check(tenant=tenant_a, descriptors=[Descriptor(key="c1", method="GET")], backend=backend)
    assert unmatched.allowed and unmatched.policies == ()


def test_check_refuses_an_unknown_policy_and_ignores_a_disabled_one(tenant_a, tenant_b):
    from apps.core.errors import ApplicationError

    RateLimitPolicyFactory(tenant=tenant_a, name="off", enabled=False)
    RateLimitPolicyFactory(tenant=tenant_b, name="theirs")
    assert decision.check(tenant=tenant_a, descriptors=[Descriptor(key="k", policy="off")]).policies == ()
    with pytest.raises(ApplicationError) as refused:
        decision.check(tenant=tenant_a, descriptors=[Descriptor(key="k", policy="theirs")])
    assert "policy" in refused.value.extra["errors"]["descriptors"]["0"]


def test_reset_key_is_audited_and_restores_the_quota(tenant_a):
    policy = RateLimitPolicyFactory(tenant=tenant_a, rate=1)
    decision.decide(targets=targets(policy, key="ip:203.0.113.7"))
    assert not decision.decide(targets=targets(policy, key="ip:203.0.113.7")).allowed
    assert services.counter_reset(policy=policy, key="ip:203.0.113.7") is True
    assert decision.decide(targets=targets(policy, key="ip:203.0.113.7")).allowed
    event = AuditEvent.objects.get(action="ratelimit.reset_key")
    assert event.object_id == str(policy.pk) and event.changes == {"key": "ip:203.0.113.7", "existed": True}


def test_policy_changes_are_audited_and_reach_the_snapshot_on_commit(tenant_a, django_capture_on_commit_callbacks):
    from apps.ratelimit.snapshot import policies_for_tenant

    with django_capture_on_commit_callbacks(execute=True):
        policy = services.policy_create(tenant=tenant_a, data={"name": "p", "rate": 5})
    assert policies_for_tenant(tenant_a.pk).by_name["p"].limit.capacity == 5
    with django_capture_on_commit_callbacks(execute=True):
        services.policy_update(policy=policy, data={"rate": 7})
    assert policies_for_tenant(tenant_a.pk).by_name["p"].limit.capacity == 7
    with django_capture_on_commit_callbacks(execute=True):
        services.policy_delete(policy=policy)
    assert "p" not in policies_for_tenant(tenant_a.pk).by_name
    actions = list(AuditEvent.objects.filter(object_type="bulwark_ratelimit.ratelimitpolicy")
                   .order_by("id").values_list("action", flat=True))
    assert actions == ["create", "update", "delete"]


@pytest.mark.parametrize("field, value", [("rate", 0), ("rate", -3), ("burst", 0), ("match_value", "nope:none"),
                                          ("key_header", "")])
def test_invalid_policies_are_refused_with_a_field_message(tenant_a, field, value):
    from django.core.exceptions import ValidationError

    data = {"name": "bad", "rate": 5, "match_kind": "route", "match_value": "admin:login"}
    if field == "key_header":
        data["key_kind"] = "header"
    data[field] = value
    with pytest.raises(ValidationError) as refused:
        services.policy_create(tenant=tenant_a, data=data)
    assert field in refused.value.message_dict
    assert not RateLimitPolicy.objects.exists()


def test_uncompilable_path_pattern_is_refused(tenant_a):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        services.policy_create(tenant=tenant_a, data={"name": "bad", "rate": 5, "match_kind": "path",
                                                      "match_value": "^/api/(unclosed"})
    assert "match_value" in refused.value.message_dict


@pytest.mark.slow
def test_store_outage_fails_open_or_closed_per_policy_logs_once_and_recovers(tenant_a, own_redis, caplog):
    backend = RedisBackend(url=own_redis.url)
    open_policy = compile_policy(RateLimitPolicyFactory(tenant=tenant_a, name="open", rate=100))
    closed_policy = compile_policy(RateLimitPolicyFactory(tenant=tenant_a, name="closed", rate=100,
                                                          failure_mode="closed"))
    with override_settings(BULWARK={"CORE": {"STORE_RETRY_INTERVAL_S": 0.2}}):
        assert decision.decide(targets=[Target(open_policy, "k"), Target(closed_policy, "k")], backend=backend).allowed
        own_redis.stop()
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="apps.core.store"):
            fail_open = decision.decide(targets=[Target(open_policy, "k")], backend=backend)
            time.sleep(0.25)  # past the retry interval: the next call tries the store again, and fails
            fail_closed = decision.decide(targets=[Target(closed_policy, "k")], backend=backend)
        assert fail_open.allowed and fail_open.policies[0].degraded
        assert not fail_closed.allowed and fail_closed.retry_after_s == 5
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
        assert "ratelimit:store" in health.degraded_components()

        own_redis.start()
        time.sleep(0.25)
        recovered = decision.decide(targets=[Target(closed_policy, "k")], backend=backend)
        assert recovered.allowed and not recovered.policies[0].degraded
        assert "ratelimit:store" not in health.degraded_components()


def test_demo_seed_is_idempotent(tenant_a):
    from apps.ratelimit import demo

    demo.seed(tenant=tenant_a)
    demo.seed(tenant=tenant_a)
    assert sorted(RateLimitPolicy.objects.for_tenant(tenant_a).values_list("name", flat=True)) == [
        "admin-role", "default", "expensive", "login"
    ]


def test_a_fixture_load_reaches_the_snapshot(tenant_a, tmp_path, django_capture_on_commit_callbacks):
    from django.core import serializers
    from django.core.management import call_command

    from apps.ratelimit.snapshot import policies_for_tenant

    policy = RateLimitPolicyFactory(tenant=tenant_a, name="from-fixture", rate=7)
    fixture = tmp_path / "policies.json"
    fixture.write_text(serializers.serialize("json", [policy]))
    policy.delete()
    assert "from-fixture" not in policies_for_tenant(tenant_a.pk).by_name
    with django_capture_on_commit_callbacks(execute=True):
        call_command("loaddata", str(fixture), verbosity=0)
    assert policies_for_tenant(tenant_a.pk).by_name["from-fixture"].limit.capacity == 7


@pytest.mark.parametrize("section, message", [
    ({"SURPRISE": 1}, "Unknown setting"),
    ({"STORE_RETRY_INTERVAL_S": 0}, "STORE_RETRY_INTERVAL_S"),
    ({"ANONYMOUS_TENANT": ""}, "ANONYMOUS_TENANT"),
])
def test_bad_settings_are_loud(section, message):
    from django.core.exceptions import ImproperlyConfigured

    from apps.ratelimit.conf import ratelimit_settings

    with override_settings(BULWARK={"RATELIMIT": section}), pytest.raises(ImproperlyConfigured, match=message):
        ratelimit_settings.validate()


def test_switching_a_policys_algorithm_starts_from_a_clean_state(tenant_a):
    policy = RateLimitPolicyFactory(tenant=tenant_a, rate=2, algorithm="sliding_window")
    for _ in range(2):
        decision.decide(targets=targets(policy))
    policy.algorithm = "gcra"
    policy.save()
    verdict = decision.decide(targets=targets(policy))
    assert verdict.allowed and not verdict.policies[0].degraded
    assert verdict.policies[0].outcome.remaining == 1


def test_the_earlier_setting_names_are_still_read_and_warn():
    from apps.core.requests import anonymous_tenant
    from apps.ratelimit.conf import ratelimit_settings
    from apps.ratelimit.decision import store_guard

    earlier = {"STORE_RETRY_INTERVAL_S": 7.0, "OUTAGE_LOG_INTERVAL_S": 9.0, "ANONYMOUS_TENANT": "old"}
    with override_settings(BULWARK={"CORE": {"STORE_RETRY_INTERVAL_S": 1.0}, "RATELIMIT": earlier}):
        with pytest.warns(DeprecationWarning, match=r"BULWARK\['RATELIMIT'\]\['STORE_RETRY_INTERVAL_S'\]"):
            ratelimit_settings.validate()
        guard = store_guard(MemoryBackend())
        assert guard.retry_interval_s() == 7.0
        assert anonymous_tenant(ratelimit_settings) == "old"
    with override_settings(BULWARK={"CORE": {"STORE_RETRY_INTERVAL_S": 3.0, "ANONYMOUS_TENANT": "new"}}):
        assert guard.retry_interval_s() == 3.0
        assert anonymous_tenant(ratelimit_settings) == "new"
