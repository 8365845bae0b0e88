"""The admin door: validation as field messages, stats on the policy page, the reset-key action."""
from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.ratelimit import decision
from apps.ratelimit.models import RateLimitPolicy
from tests.ratelimit.factories import RateLimitPolicyFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/bulwark_ratelimit/ratelimitpolicy/"

FORM = {"name": "p", "description": "", "enabled": "on", "priority": 100, "match_kind": "any", "match_value": "",
        "methods": "", "roles": "", "key_kind": "user", "key_header": "", "algorithm": "gcra", "rate": 5,
        "period": "minute", "burst": "", "mode": "enforce", "failure_mode": "open"}


def test_admin_adds_a_policy_for_its_tenant(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(CHANGELIST + "add/", FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RateLimitPolicy.objects.get().tenant == tenant_a


@pytest.mark.parametrize("change, message", [
    ({"rate": 0}, "The rate must be at least 1"),
    ({"burst": 0}, "The burst must be at least 1"),
    ({"match_kind": "route", "match_value": "nowhere"}, "Unknown URL name"),
    ({"match_kind": "path", "match_value": "(["}, "Not a pattern this service runs safely"),
    ({"match_kind": "path", "match_value": r"^/(a)\1$"}, "Backreferences and lookaround are not supported"),
])
def test_admin_form_shows_field_messages_and_saves_nothing(tenant_a, make_member, client, change, message):
    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(CHANGELIST + "add/", {**FORM, **change})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RateLimitPolicy.objects.exists()


def test_admin_duplicate_name_is_a_field_message_not_a_500(tenant_a, make_member, client):
    RateLimitPolicyFactory(tenant=tenant_a, name="p")
    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(CHANGELIST + "add/", FORM)
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_policy_page_shows_its_stats(tenant_a, make_member, client):
    policy = RateLimitPolicyFactory(tenant=tenant_a, name="tight", match_kind="named", rate=1)
    for _ in range(3):
        decision.check(tenant=tenant_a, descriptors=[decision.Descriptor(key="c", policy="tight")])
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(f"{CHANGELIST}{policy.pk}/change/").content.decode()
    assert '<strong id="ratelimit-total-allowed">1</strong>' in page
    assert '<strong id="ratelimit-total-denied">2</strong>' in page


def test_operator_resets_a_key_through_the_admin_action(tenant_a, make_member, client):
    policy = RateLimitPolicyFactory(tenant=tenant_a, name="tight", match_kind="named", rate=1)
    decision.check(tenant=tenant_a, descriptors=[decision.Descriptor(key="c", policy="tight")])
    client.force_login(make_member(tenant_a, "operator"))
    form = client.post(CHANGELIST, {"action": "reset_key", "_selected_action": [policy.pk]})
    assert form.status_code == 200 and "Reset counter" in form.content.decode()
    done = client.post(CHANGELIST, {"action": "reset_key", "_selected_action": [policy.pk], "apply": "1",
                                    "key": "c"}, follow=True)
    assert "key &#x27;c&#x27; reset." in done.content.decode()
    assert AuditEvent.objects.filter(action="ratelimit.reset_key", object_id=str(policy.pk)).exists()
    assert decision.check(tenant=tenant_a, descriptors=[decision.Descriptor(key="c", policy="tight")]).allowed


def test_viewer_cannot_run_the_reset_action(tenant_a, make_member, client):
    policy = RateLimitPolicyFactory(tenant=tenant_a, name="tight", match_kind="named", rate=1)
    client.force_login(make_member(tenant_a, "viewer"))
    client.post(CHANGELIST, {"action": "reset_key", "_selected_action": [policy.pk], "apply": "1", "key": "c"})
    assert not AuditEvent.objects.filter(action="ratelimit.reset_key").exists()
