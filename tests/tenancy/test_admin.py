import pytest
from django.test.utils import isolate_apps
from django.urls import reverse

from apps.tenancy.models import ApiToken, Membership

pytestmark = pytest.mark.django_db


def test_member_without_staff_flag_signs_in_and_sees_only_their_tenant(tenant_a, tenant_b, make_member, client):
    user = make_member(tenant_a, "viewer")
    assert not user.is_staff
    assert client.login(username=user.username, password="pw-for-tests-123")
    make_member(tenant_b, "admin", user__username="outsider")
    page = client.get(reverse("admin:bulwark_tenancy_membership_changelist"))
    assert page.status_code == 200
    assert user.username in page.content.decode()
    assert "outsider" not in page.content.decode()


def test_viewer_cannot_add_in_admin(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "viewer"))
    assert client.get(reverse("admin:bulwark_tenancy_membership_add")).status_code == 403


def test_admin_adds_token_and_sees_secret_once(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "admin"))
    response = client.post(reverse("admin:bulwark_tenancy_apitoken_add"), {"name": "ci", "role": "viewer"}, follow=True)
    assert response.status_code == 200
    token = ApiToken.objects.get(name="ci")
    assert token.tenant == tenant_a
    assert f"bwk_{token.prefix}_" in response.content.decode()
    assert f"bwk_{token.prefix}_" not in client.get(reverse("admin:bulwark_tenancy_apitoken_change", args=[token.pk])).content.decode().split("bwk_")[0]


def test_a_tenant_admin_cannot_enrol_an_existing_account_in_admin(tenant_a, make_member, client):
    from tests.factories import UserFactory

    client.force_login(make_member(tenant_a, "admin"))
    UserFactory(username="joiner")
    url = reverse("admin:bulwark_tenancy_membership_add")
    assert client.get(url).status_code == 403
    assert client.post(url, {"username": "joiner", "role": "operator"}).status_code == 403
    assert not Membership.objects.filter(user__username="joiner").exists()


def test_tenant_switcher_shown_and_works(tenant_a, tenant_b, make_member, client):
    user = make_member(tenant_a, "admin")
    Membership.objects.create(tenant=tenant_b, user=user, role="viewer")
    client.force_login(user)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="tenant-switcher"' in page
    client.post(reverse("admin:switch_tenant"), {"tenant": tenant_b.pk})
    assert "Tenant B" in client.get(reverse("admin:index")).content.decode()
    other = client.post(reverse("admin:switch_tenant"), {"tenant": 999999}, follow=True)
    assert "not a member" in other.content.decode()


def test_revoke_action(tenant_a, make_member, client):
    from apps.tenancy.services import token_create

    token, _ = token_create(tenant=tenant_a, name="old")
    client.force_login(make_member(tenant_a, "admin"))
    client.post(reverse("admin:bulwark_tenancy_apitoken_changelist"),
                {"action": "revoke_tokens", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_superuser_adding_an_existing_member_in_admin_gets_a_form_error(tenant_a, make_member, client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    member = make_member(tenant_a, "viewer")
    page = client.post(reverse("admin:bulwark_tenancy_membership_add"),
                       {"username": member.username, "tenant": tenant_a.pk, "role": "admin"})
    assert page.status_code == 200
    assert "already a member" in page.content.decode()
    assert Membership.objects.get(user=member).role == "viewer"


def test_demoting_the_last_admin_in_admin_is_a_form_error(tenant_a, make_member, client):
    admin_user = make_member(tenant_a, "admin")
    client.force_login(admin_user)
    membership = Membership.objects.get(user=admin_user)
    page = client.post(
        reverse("admin:bulwark_tenancy_membership_change", args=[membership.pk]),
        {"username": admin_user.username, "role": "viewer"},
    )
    assert page.status_code == 200
    assert "at least one admin" in page.content.decode()
    assert Membership.objects.get(pk=membership.pk).role == "admin"


@pytest.mark.parametrize("door", ["delete_page", "delete_action"])
def test_last_admin_cannot_be_deleted_in_admin(door, tenant_a, make_member, client):
    admin_user = make_member(tenant_a, "admin")
    viewer = Membership.objects.get(user=make_member(tenant_a, "viewer"))
    client.force_login(admin_user)
    membership = Membership.objects.get(user=admin_user)
    if door == "delete_page":
        page = client.post(reverse("admin:bulwark_tenancy_membership_delete", args=[membership.pk]), {"post": "yes"})
    else:
        page = client.post(
            reverse("admin:bulwark_tenancy_membership_changelist"),
            {"action": "delete_selected", "_selected_action": [membership.pk, viewer.pk], "post": "yes"},
        )
    assert "at least one admin" in page.content.decode()
    assert Membership.objects.filter(pk__in=[membership.pk, viewer.pk]).count() == 2


def test_delete_action_removes_members_through_the_service(tenant_a, make_member, client):
    from apps.audit.models import AuditEvent

    client.force_login(make_member(tenant_a, "admin"))
    viewers = [Membership.objects.get(user=make_member(tenant_a, "viewer")) for _ in range(2)]
    client.post(
        reverse("admin:bulwark_tenancy_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [m.pk for m in viewers], "post": "yes"},
    )
    assert not Membership.objects.filter(pk__in=[m.pk for m in viewers]).exists()
    deleted = AuditEvent.objects.filter(action="delete", object_type="bulwark_tenancy.membership")
    assert sorted(int(e.object_id) for e in deleted) == sorted(m.pk for m in viewers)


def test_token_with_a_past_expiry_in_admin_is_a_form_error(tenant_a, make_member, client):
    client.force_login(make_member(tenant_a, "admin"))
    page = client.post(
        reverse("admin:bulwark_tenancy_apitoken_add"),
        {"name": "ci", "role": "viewer", "expires_at_0": "2020-01-01", "expires_at_1": "00:00:00"},
    )
    assert page.status_code == 200
    assert "Must be in the future." in page.content.decode()
    assert not ApiToken.objects.filter(name="ci").exists()


@pytest.mark.parametrize(
    "changelist, query",
    [
        ("admin:bulwark_audit_auditevent_changelist", "object_id=%00"),
        ("admin:bulwark_tenancy_membership_changelist", "role=%00"),
        ("admin:bulwark_tenancy_tenant_changelist", "slug=a%00"),
        ("admin:bulwark_audit_auditevent_changelist", "q=" + "+".join(f"t{i}" for i in range(5000))),
        ("admin:bulwark_tenancy_tenant_changelist", "q=" + "+".join(f"t{i}" for i in range(11))),
    ],
    ids=["nul-audit", "nul-membership", "nul-tenant", "5000-search-terms-audit", "11-search-terms-tenant"],
)
def test_costly_or_failing_changelist_lookups_are_bad_lookups_not_500s(changelist, query, tenant_a, make_member, client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.get(f"{reverse(changelist)}?{query}")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_tenant_switcher_never_redirects_off_site(tenant_a, tenant_b, make_member, client):
    user = make_member(tenant_a, "admin")
    Membership.objects.create(tenant=tenant_b, user=user, role="viewer")
    client.force_login(user)
    for next_url in ("https://evil.example/", "//evil.example/admin/", "javascript:alert(1)"):
        response = client.post(reverse("admin:switch_tenant"), {"tenant": tenant_b.pk, "next": next_url})
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:index")
    kept = client.post(reverse("admin:switch_tenant"), {"tenant": tenant_a.pk, "next": "/admin/bulwark_audit/"})
    assert kept["Location"] == "/admin/bulwark_audit/"


def test_tenant_switcher_needs_a_csrf_token_and_a_post(tenant_a, tenant_b, make_member):
    from django.test import Client

    user = make_member(tenant_a, "admin")
    Membership.objects.create(tenant=tenant_b, user=user, role="viewer")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("admin:switch_tenant"), {"tenant": tenant_b.pk}).status_code == 403
    assert client.get(reverse("admin:switch_tenant"), {"tenant": tenant_b.pk}).status_code == 405
    assert "Tenant A" in client.get(reverse("admin:index")).content.decode()


@isolate_apps("apps.tenancy")
def test_many_to_many_choices_of_a_tenant_admin_are_the_active_tenants_only(tenant_a, tenant_b, make_member, rf):
    from django.contrib import admin as django_admin
    from django.db import models

    from apps.tenancy.admin_base import TenantScopedAdmin
    from apps.tenancy.models import TenantOwned

    class AlertRule(TenantOwned):  # the shape of a later app's model: a rule notifying some members
        notify = models.ManyToManyField(Membership, related_name="+")

        class Meta:
            app_label = "bulwark_tenancy"

    mine = Membership.objects.get(user=make_member(tenant_a, "viewer"))
    theirs = Membership.objects.get(user=make_member(tenant_b, "viewer"))
    request = rf.get("/")
    request.user, request.tenant, request.role = make_member(tenant_a, "admin"), tenant_a, "admin"
    model_admin = TenantScopedAdmin(AlertRule, django_admin.site)
    field = model_admin.formfield_for_manytomany(AlertRule._meta.get_field("notify"), request)
    choices = set(field.queryset)
    assert mine in choices and theirs not in choices


@isolate_apps("apps.tenancy")
def test_foreign_key_list_filters_of_a_tenant_admin_list_only_the_active_tenants_rows(tenant_a, make_member, rf):
    from django.contrib import admin as django_admin
    from django.db import models

    from apps.tenancy.admin_base import TenantScopedAdmin
    from apps.tenancy.models import TenantOwned

    class Alert(TenantOwned):  # the shape of a later app's model: filtered by the member it was sent to
        recipient = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
        level = models.CharField(max_length=10)

        class Meta:
            app_label = "bulwark_tenancy"

    class AlertAdmin(TenantScopedAdmin):
        list_filter = ["recipient", "level"]

    request = rf.get("/")
    request.user, request.tenant, request.role = make_member(tenant_a, "admin"), tenant_a, "admin"
    filters = AlertAdmin(Alert, django_admin.site).get_list_filter(request)
    assert filters == [("recipient", django_admin.RelatedOnlyFieldListFilter), "level"]


def test_superuser_cannot_move_a_membership_to_another_tenant(tenant_a, tenant_b, make_member, client):
    from tests.factories import UserFactory

    membership = Membership.objects.get(user=make_member(tenant_a, "viewer"))
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    url = reverse("admin:bulwark_tenancy_membership_change", args=[membership.pk])
    assert 'name="tenant"' not in client.get(url).content.decode()
    client.post(url, {"username": membership.user.username, "tenant": tenant_b.pk, "role": "operator"})
    membership.refresh_from_db()
    assert (membership.tenant_id, membership.role) == (tenant_a.pk, "operator")
