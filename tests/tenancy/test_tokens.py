from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tenancy import tokens
from apps.tenancy.models import ApiToken
from apps.tenancy.services import token_create, token_revoke

pytestmark = pytest.mark.django_db


def bearer(api_client, plaintext):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return api_client


def test_only_a_hash_of_the_secret_is_stored(tenant_a):
    token, plaintext = token_create(tenant=tenant_a, name="ci", role="viewer")
    row = ApiToken.objects.values().get(pk=token.pk)
    secret = tokens.parse(plaintext).secret
    assert all(secret not in str(value) for value in row.values())
    assert row["secret_hash"] == tokens.hash_secret(secret)
    assert plaintext.startswith(f"bwk_{row['prefix']}_")


def test_token_gives_its_tenant_and_role(tenant_a, api_client):
    _, plaintext = token_create(tenant=tenant_a, name="ci", role="operator")
    body = bearer(api_client, plaintext).get("/api/v1/me").json()
    assert body["tenant"]["slug"] == "tenant-a"
    assert body["role"] == "operator"
    assert body["principal"]["kind"] == "token"


def test_token_cannot_choose_another_tenant_by_header(tenant_a, tenant_b, api_client):
    _, plaintext = token_create(tenant=tenant_a, name="ci", role="admin")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}", HTTP_X_BULWARK_TENANT=tenant_b.slug)
    assert api_client.get("/api/v1/me").json()["tenant"]["slug"] == "tenant-a"


def test_expired_token_is_refused_with_a_clear_message(tenant_a, api_client):
    token, plaintext = token_create(tenant=tenant_a, name="ci", expires_at=timezone.now() + timedelta(seconds=60))
    token.expires_at = timezone.now() - timedelta(seconds=1)  # a save: update() on an audited model is refused
    token.save(update_fields=["expires_at"])
    response = bearer(api_client, plaintext).get("/api/v1/me")
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_revoked_token_stops_working_at_once_in_this_process(tenant_a, api_client):
    token, plaintext = token_create(tenant=tenant_a, name="ci")
    assert bearer(api_client, plaintext).get("/api/v1/me").status_code == 200
    from django.test.utils import CaptureQueriesContext  # noqa: F401  (warm path shown below)

    token_revoke(token=token)
    from apps.core.snapshot import bump_version

    bump_version("tenancy.tokens", "all")  # what on_commit does once the revoke commits
    response = api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_revoke_through_api_commits_and_invalidates(tenant_a, token_client, api_client, django_capture_on_commit_callbacks):
    token, plaintext = token_create(tenant=tenant_a, name="victim")
    assert bearer(api_client, plaintext).get("/api/v1/me").status_code == 200
    admin = token_client(tenant_a, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(f"/api/v1/tokens/{token.pk}/revoke/").status_code == 200
    assert api_client.get("/api/v1/me").status_code == 401
    assert admin.post(f"/api/v1/tokens/{token.pk}/revoke/").status_code == 409


def test_disabled_tenant_token_gets_403(tenant_a, api_client, django_capture_on_commit_callbacks):
    from apps.tenancy.services import tenant_update

    _, plaintext = token_create(tenant=tenant_a, name="ci")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_update(tenant=tenant_a, data={"is_active": False})
    response = bearer(api_client, plaintext).get("/api/v1/me")
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_disabled"


@pytest.mark.parametrize("raw", ["garbage", "bwk_short_x", "bwk_abcdefgh_" + "x" * 43, "Bearer", ""])
def test_malformed_or_unknown_tokens_get_401(raw, tenant_a, api_client):
    response = bearer(api_client, raw).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_warm_token_lookup_costs_no_query(tenant_a, api_client, django_assert_num_queries):
    _, plaintext = token_create(tenant=tenant_a, name="ci")
    from apps.tenancy.selectors import token_resolve

    token_resolve(raw=plaintext)
    with django_assert_num_queries(0):
        token_resolve(raw=plaintext)


def test_created_secret_is_shown_once_then_never(tenant_a, token_client):
    client = token_client(tenant_a, "admin")
    created = client.post("/api/v1/tokens/", {"name": "deploy", "role": "viewer"}, format="json")
    assert created.status_code == 201
    plaintext = created.json()["token"]
    assert tokens.parse(plaintext) is not None
    fetched = client.get(f"/api/v1/tokens/{created.json()['id']}/").json()
    assert "token" not in fetched
    assert plaintext not in str(client.get("/api/v1/tokens/").json())


def test_a_token_cannot_mint_a_stronger_token(tenant_a, token_client, member_client):
    client = member_client(tenant_a, "admin")
    response = client.post("/api/v1/tokens/", {"name": "x", "role": "admin"}, format="json")
    assert response.status_code == 201
    from django.core.exceptions import ValidationError

    from apps.tenancy.services import token_create as create

    with pytest.raises(ValidationError):
        create(tenant=tenant_a, name="y", role="admin", creator_role="operator")


def test_tenant_disabled_in_the_admin_stops_its_tokens(
    tenant_a, api_client, client, django_user_model, django_capture_on_commit_callbacks
):
    _, plaintext = token_create(tenant=tenant_a, name="ci", role="viewer")
    assert bearer(api_client, plaintext).get("/api/v1/me").status_code == 200  # warm: cached in this process
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-123"))
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            f"/admin/bulwark_tenancy/tenant/{tenant_a.pk}/change/", {"name": tenant_a.name, "slug": tenant_a.slug}
        )
    assert page.status_code == 302
    response = api_client.get("/api/v1/me")
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_disabled"


def test_token_revoked_outside_the_service_stops_working(tenant_a, api_client, django_capture_on_commit_callbacks):
    token, plaintext = token_create(tenant=tenant_a, name="ci", role="viewer")
    assert bearer(api_client, plaintext).get("/api/v1/me").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        token.revoked_at = timezone.now()
        token.save()  # a shell or data migration, not token_revoke
    assert api_client.get("/api/v1/me").status_code == 401
