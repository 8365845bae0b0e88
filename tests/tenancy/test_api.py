import pytest

from apps.tenancy.models import Membership, Tenant
from apps.tenancy.services import tenant_update

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role, expected", [("viewer", 403), ("operator", 403), ("admin", 201)])
def test_only_admins_add_members(role, expected, tenant_a, member_client):
    response = member_client(tenant_a, role).post(
        "/api/v1/members/", {"username": "newbie", "role": "viewer", "password": "Long-enough-pass-42"}, format="json")
    assert response.status_code == expected
    assert Membership.objects.filter(user__username="newbie").exists() == (expected == 201)


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_reads(role, tenant_a, member_client):
    assert member_client(tenant_a, role).get("/api/v1/members/").status_code == 200


def test_viewer_token_cannot_create_tokens(tenant_a, token_client):
    response = token_client(tenant_a, "viewer").post("/api/v1/tokens/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_session_user_cannot_pick_a_tenant_they_are_not_in(tenant_a, tenant_b, member_client):
    client = member_client(tenant_a, "admin")
    client.credentials(HTTP_X_BULWARK_TENANT=tenant_b.slug)
    response = client.get("/api/v1/members/")
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_forbidden"


def test_switching_tenant_in_session(tenant_a, tenant_b, make_member, client):
    user = make_member(tenant_a, "viewer")
    Membership.objects.create(tenant=tenant_b, user=user, role="admin")
    client.force_login(user)
    assert client.get("/api/v1/me").json()["tenant"]["slug"] == "tenant-a"
    assert client.post("/api/v1/me/switch", {"tenant": "tenant-b"}, content_type="application/json").status_code == 200
    me = client.get("/api/v1/me").json()
    assert (me["tenant"]["slug"], me["role"]) == ("tenant-b", "admin")
    assert client.post("/api/v1/me/switch", {"tenant": "nope"}, content_type="application/json").status_code == 403


def test_tenants_endpoint_is_for_superusers(tenant_a, member_client, client):
    assert member_client(tenant_a, "admin").get("/api/v1/tenants/").status_code == 403
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    assert client.get("/api/v1/tenants/").status_code == 200
    created = client.post("/api/v1/tenants/", {"name": "Initech", "slug": "initech"}, content_type="application/json")
    assert created.status_code == 201


def test_last_admin_cannot_be_removed_or_demoted(tenant_a, member_client):
    client = member_client(tenant_a, "admin")
    membership = Membership.objects.get(tenant=tenant_a)
    assert client.patch(f"/api/v1/members/{membership.pk}/", {"role": "viewer"}, format="json").status_code == 409
    assert client.delete(f"/api/v1/members/{membership.pk}/").status_code == 409
    assert Membership.objects.get(pk=membership.pk).role == "admin"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"username": "x", "role": "viewer", "surprise": 1}, "surprise"),
        ({"username": "x", "role": "emperor"}, "role"),
        ({"username": "x" * 500, "role": "viewer"}, "username"),
        ({"username": ["x"], "role": "viewer"}, "username"),
        ({"username": "ghost", "role": "viewer"}, "password"),
        ({"username": "newcomer", "role": "viewer", "password": "123"}, "password"),
        ({"username": "bad name!", "role": "viewer", "password": "Long-enough-pass-42"}, "username"),
        ({"username": "newcomer", "role": "viewer", "password": "Long-enough-pass-42", "email": "nope"}, "email"),
    ],
)
def test_bad_member_input_answers_400_with_field_errors_and_changes_nothing(payload, field, tenant_a, member_client):
    client = member_client(tenant_a, "admin")
    before = Membership.objects.count()
    response = client.post("/api/v1/members/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["code"] == "invalid"
    assert field in body["errors"]
    assert Membership.objects.count() == before


def test_bad_token_input(tenant_a, member_client):
    client = member_client(tenant_a, "admin")
    response = client.post("/api/v1/tokens/", {"name": "n" * 121, "expires_at": "yesterday"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name", "expires_at"}
    past = client.post("/api/v1/tokens/", {"name": "n", "expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert past.status_code == 400 and "expires_at" in past.json()["errors"]


def test_non_json_body_is_a_clean_400(tenant_a, member_client):
    client = member_client(tenant_a, "admin")
    response = client.post("/api/v1/members/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_unauthenticated_api_gets_401_or_403(api_client):
    assert api_client.get("/api/v1/members/").status_code in (401, 403)


def test_schema_and_offline_docs(api_client):
    assert api_client.get("/api/schema/").status_code == 200
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()


def test_deleting_a_tenant_with_an_audit_trail_is_a_409_not_a_500(tenant_a, client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.delete(f"/api/v1/tenants/{tenant_a.pk}/")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "protected"
    assert "audit events" in body["message"]
    assert Tenant.objects.filter(pk=tenant_a.pk).exists()


def test_session_user_of_a_disabled_tenant_is_refused_with_a_clear_message(tenant_a, make_member, api_client):
    api_client.force_login(make_member(tenant_a, "admin"))
    tenant_update(tenant=tenant_a, data={"is_active": False})
    refused = api_client.get("/api/v1/members/")
    assert refused.status_code == 403
    assert "active tenant" in refused.json()["message"]
    by_header = api_client.get("/api/v1/members/", HTTP_X_BULWARK_TENANT=tenant_a.slug)
    assert by_header.status_code == 403 and by_header.json()["code"] == "tenant_forbidden"


def test_superuser_acts_as_admin_in_any_active_tenant_by_header(tenant_a, tenant_b, api_client):
    from tests.factories import UserFactory

    api_client.force_login(UserFactory(is_superuser=True, is_staff=True))
    body = api_client.get("/api/v1/me", HTTP_X_BULWARK_TENANT=tenant_b.slug).json()
    assert body["tenant"]["slug"] == tenant_b.slug and body["role"] == "admin"
    tenant_update(tenant=tenant_b, data={"is_active": False})
    assert api_client.get("/api/v1/me", HTTP_X_BULWARK_TENANT=tenant_b.slug).status_code == 403


def test_creating_an_account_whose_username_is_taken_enrols_nobody(tenant_a, tenant_b, make_member, member_client):
    other = make_member(tenant_b, "viewer")
    response = member_client(tenant_a, "admin").post(
        "/api/v1/members/", {"username": other.username, "role": "viewer", "password": "Long-enough-pass-42"},
        format="json")
    assert response.status_code == 400
    assert "invitation" in response.json()["errors"]["username"][0]
    assert not Membership.objects.filter(tenant=tenant_a, user=other).exists()
    assert other.email not in response.content.decode()


def test_a_membership_added_later_by_another_tenant_never_becomes_the_default(tenant_a, make_member, api_client):
    from tests.factories import TenantFactory

    user = make_member(tenant_a, "admin")
    intruder = TenantFactory(slug="aaa-first-by-slug", name="Intruder")
    Membership.objects.create(tenant=intruder, user=user, role="admin")  # added by intruder's admin
    api_client.force_login(user)
    body = api_client.get("/api/v1/me").json()
    assert body["tenant"]["slug"] == tenant_a.slug
    assert [m["tenant"] for m in body["memberships"]] == ["aaa-first-by-slug", tenant_a.slug]
