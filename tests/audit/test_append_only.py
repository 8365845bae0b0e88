"""Append-only: the database (PostgreSQL trigger) and the model layer refuse changes; retention is the one door."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit.models import AppendOnlyError, AuditAnchor, AuditEvent
from apps.audit.selectors import chain_verify
from apps.audit.services import record, retention_apply
from apps.core import context
from apps.core.context import Actor, RequestContext

pytestmark = pytest.mark.django_db
on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")


@on_postgresql
@pytest.mark.parametrize("sql", [
    "UPDATE bulwark_audit_auditevent SET action = 'forged' WHERE id = %s",
    "DELETE FROM bulwark_audit_auditevent WHERE id = %s",
])
def test_raw_sql_update_and_delete_fail_on_postgresql(tenant_a, sql):
    event = record(action="x.y", tenant=tenant_a)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "x.y"


def test_model_layer_refuses_update_and_delete(tenant_a):
    event = record(action="x.y", tenant=tenant_a)
    event.action = "forged"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(AppendOnlyError, match="retention_apply"):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "x.y"


def _age(tenant, days: int) -> None:
    """Write events dated `days` ago (the clock is what record() reads)."""
    with mock.patch("apps.audit.services.timezone.now", return_value=timezone.now() - timedelta(days=days)):
        record(action="old.thing", tenant=tenant, changes={"age_days": days})


@pytest.fixture
def old_tenant(db):
    from tests.factories import TenantFactory

    with mock.patch("apps.audit.services.timezone.now", return_value=timezone.now() - timedelta(days=500)):
        return TenantFactory(slug="old", name="Old")


def test_retention_deletes_old_events_records_itself_and_the_chain_still_verifies(old_tenant, tenant_b):
    for days in (400, 300, 200):
        _age(old_tenant, days)
    _age(tenant_b, 400)
    recent = record(action="new.thing", tenant=old_tenant)
    with context.bind(RequestContext(actor=Actor.system(id="job:7", display="job audit.retention"))):
        deleted = retention_apply(tenant=old_tenant, older_than=timezone.now() - timedelta(days=250))
    assert deleted == 3  # the creation (500 days), 400 and 300 days
    assert list(AuditEvent.objects.filter(tenant=old_tenant).order_by("id").values_list("action", flat=True)) == [
        "old.thing", "new.thing", "audit.retention"]
    assert AuditEvent.objects.filter(tenant=tenant_b, changes__age_days=400).exists()
    assert AuditEvent.objects.filter(pk=recent.pk).exists()
    event = AuditEvent.objects.get(tenant=old_tenant, action="audit.retention")
    assert (event.actor_kind, event.actor_id) == ("system", "job:7")
    assert event.changes["deleted"] == 3
    assert AuditAnchor.objects.filter(tenant=old_tenant).count() == 1
    assert chain_verify(tenant_id=old_tenant.pk).ok
    call_command("audit_verify", tenant="old")


def test_retention_removes_only_a_prefix_of_the_chain(tenant_a):
    """An old-dated event written after a recent one stays: a hole in the middle would break the chain."""
    _age(tenant_a, 400)
    assert retention_apply(tenant=tenant_a, older_than=timezone.now() - timedelta(days=1)) == 0
    assert AuditEvent.objects.filter(tenant=tenant_a, changes__age_days=400).exists()


def test_retention_of_all_chains_and_of_everything_keeps_every_chain_verifiable(tenant_a, tenant_b):
    record(action="aged.thing", tenant=tenant_a)
    record(action="platform.thing")
    deleted = retention_apply(older_than=timezone.now() + timedelta(seconds=1))
    assert deleted == 4  # two tenant creations, one more event of tenant_a, one platform event
    for tenant_id in (tenant_a.pk, tenant_b.pk, None):
        remaining = list(AuditEvent.objects.filter(tenant_id=tenant_id) if tenant_id else
                         AuditEvent.objects.filter(tenant__isnull=True))
        assert [e.action for e in remaining] == ["audit.retention"]
        assert chain_verify(tenant_id=tenant_id).ok
    after = record(action="later.thing", tenant=tenant_a)
    assert after.prev_hash == AuditEvent.objects.get(tenant=tenant_a, action="audit.retention").hash
    call_command("audit_verify")


def test_retention_with_nothing_old_enough_changes_nothing(tenant_a):
    before = AuditEvent.objects.count()
    assert retention_apply(tenant=tenant_a, older_than=timezone.now() - timedelta(days=1)) == 0
    assert AuditEvent.objects.count() == before


@on_postgresql
def test_the_retention_flag_does_not_outlive_the_retention(old_tenant):
    assert retention_apply(tenant=old_tenant, older_than=timezone.now() - timedelta(days=1)) == 1
    keep = AuditEvent.objects.filter(tenant=old_tenant).first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM bulwark_audit_auditevent WHERE id = %s", [keep.pk])
