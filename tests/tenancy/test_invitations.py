"""Invitations (issue 13, item 3): a tenant admin invites, the invitee accepts while signed in; nothing leaks."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.tenancy import services
from apps.tenancy.models import Invitation, Membership
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def acme_viewer(db):
    acme = TenantFactory(slug="acme", name="Acme")
    return MembershipFactory(tenant=acme, role="viewer", user=UserFactory(username="acme-viewer")).user


def test_the_issue_repro_globex_admin_cannot_enrol_acme_viewer_nor_read_the_email(acme_viewer, token_client):
    globex = TenantFactory(slug="globex", name="Globex")
    client = token_client(globex, "admin")
    response = client.post("/api/v1/members/", {"username": "acme-viewer", "role": "viewer"}, format="json")
    assert response.status_code == 400
    assert not Membership.objects.filter(tenant=globex, user=acme_viewer).exists()
    assert acme_viewer.email not in response.content.decode()


def _strip(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("id", "username", "token", "accept_url", "created_at",
                                                       "expires_at")}


def test_known_and_unknown_usernames_answer_identically(acme_viewer, django_capture_on_commit_callbacks,
                                                         token_client):
    client = token_client(TenantFactory(slug="globex"), "admin")
    for path in ("/api/v1/members/", "/api/v1/members/invitations/"):
        known = client.post(path, {"username": "acme-viewer", "role": "viewer"}, format="json")
        unknown = client.post(path, {"username": "nobody-here", "role": "viewer"}, format="json")
        assert known.status_code == unknown.status_code
        assert _strip(known.json()) == _strip(unknown.json())
        assert acme_viewer.email not in known.content.decode()


def _invite(tenant, member_client, **fields):
    response = member_client(tenant, "admin").post("/api/v1/members/invitations/", {"role": "operator", **fields},
                                                   format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_invitee_accepts_while_signed_in_and_becomes_a_member_once(tenant_a, acme_viewer, member_client,
                                                                   api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        body = _invite(tenant_a, member_client, email=acme_viewer.email)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [acme_viewer.email]
    assert body["accept_url"] in mail.outbox[0].body
    assert Invitation.objects.get(pk=body["id"]).token_hash != body["token"]
    api_client.force_login(acme_viewer)
    accepted = api_client.post("/api/v1/members/invitations/accept/", {"token": body["token"]}, format="json")
    assert accepted.status_code == 201
    assert Membership.objects.get(tenant=tenant_a, user=acme_viewer).role == "operator"
    again = api_client.post("/api/v1/members/invitations/accept/", {"token": body["token"]}, format="json")
    assert again.status_code == 409
    actions = set(AuditEvent.objects.filter(tenant=tenant_a).values_list("object_type", "action"))
    assert {("bulwark_tenancy.invitation", "create"), ("bulwark_tenancy.membership", "create"),
            ("bulwark_tenancy.invitation", "update")} <= actions


def test_an_expired_invitation_is_refused(tenant_a, acme_viewer):
    invitation, token = services.invitation_create(tenant=tenant_a, role="viewer", username="acme-viewer",
                                                   now=timezone.now() - timedelta(days=30))
    with pytest.raises(services.ConflictError):
        services.invitation_accept(token=token, user=acme_viewer)
    assert not Membership.objects.filter(tenant=tenant_a, user=acme_viewer).exists()


def test_another_user_cannot_accept(tenant_a, acme_viewer, api_client):
    _, token = services.invitation_create(tenant=tenant_a, role="admin", username="acme-viewer")
    api_client.force_login(UserFactory(username="mallory"))
    response = api_client.post("/api/v1/members/invitations/accept/", {"token": token}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "wrong_user"
    assert not Membership.objects.filter(tenant=tenant_a).exists()


def test_a_platform_superuser_is_never_enrolled_nor_mailed(tenant_a, api_client,
                                                           django_capture_on_commit_callbacks):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        _, token = services.invitation_create(tenant=tenant_a, role="admin", username="root")
    assert mail.outbox == []
    api_client.force_login(root)
    response = api_client.post("/api/v1/members/invitations/accept/", {"token": token}, format="json")
    assert response.status_code == 403
    assert not Membership.objects.filter(tenant=tenant_a, user=root).exists()


def test_member_bodies_show_no_email(tenant_a, member_client):
    body = member_client(tenant_a, "viewer").get("/api/v1/members/").json()
    assert body["results"] and all("email" not in row["user"] for row in body["results"])


def test_viewers_cannot_list_or_send_invitations(tenant_a, member_client):
    client = member_client(tenant_a, "viewer")
    assert client.get("/api/v1/members/invitations/").status_code == 403
    assert client.post("/api/v1/members/invitations/", {"email": "x@example.com"}, format="json").status_code == 403
