"""The admin door (changes saved in the admin are recorded with the user) and the read-only event admin."""
from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.audit.services import record
from apps.tenancy.models import Invitation, Membership
from tests.audit.factories import AuditEventFactory
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:bulwark_audit_auditevent_changelist"


def test_change_in_the_admin_is_recorded_with_the_user_and_request(tenant_a, make_member, client):
    admin_user = make_member(tenant_a, "admin")
    client.force_login(admin_user)
    UserFactory(username="joiner")
    # Tenant admins invite existing accounts (issue 13, item 3): the invitation is what the admin creates.
    response = client.post(reverse("admin:bulwark_tenancy_invitation_add"),
                           {"email": "", "username": "joiner", "role": "operator"}, HTTP_X_REQUEST_ID="req-admin-1")
    assert response.status_code == 302
    invitation = Invitation.objects.get(username="joiner")
    event = AuditEvent.objects.get(action="create", object_type="bulwark_tenancy.invitation",
                                   object_id=str(invitation.pk))
    assert (event.actor_kind, event.actor_id, event.actor_display) == ("user", str(admin_user.pk), admin_user.username)
    assert (event.request_id, event.client_ip, event.tenant) == ("req-admin-1", "127.0.0.1", tenant_a)
    assert event.changes["role"] == [None, "operator"]


def test_event_admin_is_read_only_even_for_superusers(tenant_a, client, django_user_model):
    event = AuditEventFactory(tenant=tenant_a)
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-123"))
    assert client.get(reverse("admin:bulwark_audit_auditevent_add")).status_code == 403
    change_url = reverse("admin:bulwark_audit_auditevent_change", args=[event.pk])
    page = client.get(change_url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change_url, {"action": "forged"}).status_code == 403
    assert client.post(reverse("admin:bulwark_audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_change_page_shows_the_diff_as_an_old_new_table(tenant_a, make_member, client):
    member = MembershipFactory(tenant=tenant_a, role="viewer")
    member.role = "operator"
    member.save()
    event = AuditEvent.objects.get(action="update", object_id=str(member.pk), object_type="bulwark_tenancy.membership")
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(reverse("admin:bulwark_audit_auditevent_change", args=[event.pk])).content.decode()
    assert '<table class="audit-changes">' in page
    assert "<tr><th>role</th><td>viewer</td><td>→</td><td>operator</td></tr>" in page


def test_named_operation_shows_its_parameters(tenant_a, make_member, client):
    event = record(action="breaker.force_open", tenant=tenant_a, changes={"duration_s": 60, "reason": "<b>x</b>"})
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(reverse("admin:bulwark_audit_auditevent_change", args=[event.pk])).content.decode()
    assert "<tr><th>duration_s</th><td>60</td></tr>" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # values are escaped


def test_changelist_filters_and_search(tenant_a, tenant_b, make_member, client):
    AuditEventFactory(tenant=tenant_a, action="breaker.force_open", object_repr="payments")
    AuditEventFactory(tenant=tenant_a, action="cache.flush", object_repr="users-cache")
    AuditEventFactory(tenant=tenant_b, action="cache.flush", object_repr="secret-of-b")
    client.force_login(make_member(tenant_a, "viewer"))
    url = reverse(CHANGELIST)
    page = client.get(url).content.decode()
    assert "payments" in page and "users-cache" in page and "secret-of-b" not in page
    for label in ("By actor kind", "By action", "By object type", "By timestamp"):
        assert label in page
    assert "payments" not in client.get(url, {"action": "cache.flush"}).content.decode()
    searched = client.get(url, {"q": "users"}).content.decode()
    assert "users-cache" in searched and "payments" not in searched


def test_superuser_sees_platform_events_and_filters_by_tenant(tenant_a, client, django_user_model):
    record(action="platform.maintenance", object_repr="platform-wide")
    AuditEventFactory(tenant=tenant_a, object_repr="tenant-thing")
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-123"))
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "platform-wide" in page and "By tenant" in page
    filtered = client.get(reverse(CHANGELIST), {"tenant__id__exact": tenant_a.pk}).content.decode()
    assert "tenant-thing" in filtered and "platform-wide" not in filtered


def test_members_never_see_platform_events(tenant_a, make_member, client):
    event = record(action="platform.maintenance", object_repr="platform-wide")
    client.force_login(make_member(tenant_a, "admin"))
    assert "platform-wide" not in client.get(reverse(CHANGELIST)).content.decode()
    assert client.get(reverse("admin:bulwark_audit_auditevent_change", args=[event.pk])).status_code == 404


def test_audited_objects_change_page_links_to_its_history(tenant_a, make_member, client):
    admin_user = make_member(tenant_a, "admin")
    member = Membership.objects.get(user=admin_user)
    client.force_login(admin_user)
    page = client.get(reverse("admin:bulwark_tenancy_membership_change", args=[member.pk])).content.decode()
    expected = f"{reverse(CHANGELIST)}?object_type=bulwark_tenancy.membership&amp;object_id={member.pk}"
    assert f'href="{expected}"' in page
    history = client.get(reverse(CHANGELIST), {"object_type": "bulwark_tenancy.membership", "object_id": member.pk})
    assert history.status_code == 200
    assert "1 audit event" in history.content.decode()


def test_audit_event_change_page_itself_has_no_history_link(tenant_a, make_member, client):
    event = AuditEventFactory(tenant=tenant_a)
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(reverse("admin:bulwark_audit_auditevent_change", args=[event.pk])).content.decode()
    assert "audit-history-link" not in page


def test_verify_action_reports_intact_and_broken_chains(tenant_a, make_member, client, tamper):
    events = [AuditEventFactory(tenant=tenant_a) for _ in range(3)]
    client.force_login(make_member(tenant_a, "viewer"))
    url = reverse(CHANGELIST)
    action = {"action": "verify_chains", "_selected_action": [events[0].pk]}
    page = client.post(url, action, follow=True).content.decode()
    assert "Tenant tenant-a: chain intact" in page
    tamper("UPDATE bulwark_audit_auditevent SET object_repr = 'forged' WHERE id = %s", [events[1].pk])
    page = client.post(url, action, follow=True).content.decode()
    assert f"chain BROKEN at event {events[1].pk}: content does not match its hash" in page


def test_actor_filter_lists_only_this_tenants_actors(tenant_a, tenant_b, make_member, client):
    from apps.core import context
    from apps.core.context import Actor, RequestContext

    with context.bind(RequestContext(actor=Actor(kind="user", id="99", display="other-tenant-person"))):
        AuditEventFactory(tenant=tenant_b)
    client.force_login(make_member(tenant_a, "viewer"))
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "By actor display" in page and "other-tenant-person" not in page
