"""Bulk writes on audited models: refused with a message naming the service, except excluded-field updates."""
from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.test.utils import isolate_apps
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.audited import BulkWriteRefused, audited
from apps.tenancy.models import ApiToken, Membership, Tenant
from apps.tenancy.selectors import token_resolve
from apps.tenancy.services import token_create
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [Tenant, Membership, ApiToken], ids=lambda m: m.__name__)
def test_queryset_update_of_an_audited_field_is_refused_and_changes_nothing(model, tenant_a):
    MembershipFactory(tenant=tenant_a)
    token_create(tenant=tenant_a, name="ci")
    field = {"Tenant": "name", "Membership": "role", "ApiToken": "role"}[model.__name__]
    before = list(model.objects.values_list(field, flat=True))
    with pytest.raises(BulkWriteRefused, match=r"objects\.update\(\).*apps\.audit\.services\.record"):
        model.objects.update(**{field: "admin"})
    assert list(model.objects.values_list(field, flat=True)) == before


def test_bulk_create_and_bulk_update_are_refused(tenant_a):
    user = UserFactory()
    with pytest.raises(BulkWriteRefused, match="bulk_create"):
        Membership.objects.bulk_create([Membership(tenant=tenant_a, user=user, role="viewer")])
    assert not Membership.objects.filter(user=user).exists()
    tenant_a.name = "Bulk"
    with pytest.raises(BulkWriteRefused, match="bulk_update"):
        Tenant.objects.bulk_update([tenant_a], ["name"])
    assert Tenant.objects.get(pk=tenant_a.pk).name == "Tenant A"


def test_update_of_fields_excluded_from_audit_is_allowed_and_token_usage_still_recorded(tenant_a):
    token, plaintext = token_create(tenant=tenant_a, name="ci")
    events_before = AuditEvent.objects.count()
    token_resolve(raw=plaintext)  # writes last_used_at with QuerySet.update()
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    assert AuditEvent.objects.count() == events_before


def test_queryset_delete_is_captured_per_object(tenant_a):
    members = [MembershipFactory(tenant=tenant_a) for _ in range(3)]
    Membership.objects.filter(pk__in=[m.pk for m in members]).delete()
    deleted = AuditEvent.objects.filter(action="delete", object_type="bulwark_tenancy.membership")
    assert sorted(int(e.object_id) for e in deleted) == sorted(m.pk for m in members)


@isolate_apps("apps.audit")
def test_a_model_whose_manager_would_let_bulk_writes_escape_cannot_be_audited():
    class Loose(models.Model):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "bulwark_audit"

        def __str__(self) -> str:
            return self.name

    with pytest.raises(ImproperlyConfigured, match="AuditedQuerySet"):
        audited()(Loose)
