"""The service door: record(), automatic capture of audited models, context, masking and rollback."""
from __future__ import annotations

import pytest
from django.db import transaction

from apps.audit.chain import event_hash
from apps.audit.models import AuditEvent
from apps.audit.services import record
from apps.core import context
from apps.core.audited import MASK
from apps.core.context import Actor, RequestContext
from apps.core.services import model_update
from apps.tenancy import services as tenancy
from apps.tenancy.models import ApiToken, Membership, Tenant

pytestmark = pytest.mark.django_db


def events_of(obj):
    return list(
        AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("id")
    )


def test_tenant_create_and_update_are_recorded_with_a_field_diff():
    tenant = tenancy.tenant_create(name="Acme", slug="acme")
    tenancy.tenant_update(tenant=tenant, data={"name": "Acme Corp", "is_active": False})
    created, updated = events_of(tenant)
    assert created.action == "create" and created.tenant == tenant
    assert created.changes["slug"] == [None, "acme"]
    assert updated.action == "update"
    assert updated.changes == {"name": ["Acme", "Acme Corp"], "is_active": [True, False]}


def test_save_without_a_change_records_nothing(tenant_a):
    before = AuditEvent.objects.count()
    tenant_a.save()
    assert AuditEvent.objects.count() == before


def test_membership_role_change_and_delete_are_recorded(tenant_a, make_member):
    make_member(tenant_a, "admin")
    member = Membership.objects.get(user=make_member(tenant_a, "viewer"))
    tenancy.membership_update(membership=member, role="operator")
    member_pk = member.pk
    tenancy.membership_delete(membership=member)
    actions = [(e.action, e.changes.get("role")) for e in AuditEvent.objects.filter(
        object_type="bulwark_tenancy.membership", object_id=str(member_pk)).order_by("id")]
    assert actions == [("create", [None, "viewer"]), ("update", ["viewer", "operator"]), ("delete", ["operator", None])]


def test_token_secret_never_appears_and_last_used_is_not_audited(tenant_a):
    token, plaintext = tenancy.token_create(tenant=tenant_a, name="ci")
    (created,) = events_of(token)
    assert created.changes["secret_hash"] == [None, MASK]
    secret_hash = ApiToken.objects.get(pk=token.pk).secret_hash
    every_event = str(list(AuditEvent.objects.values_list("changes", flat=True)))
    assert secret_hash not in every_event and plaintext.split("_")[-1] not in every_event
    token.last_used_at = created.timestamp
    token.save()
    assert len(events_of(token)) == 1


def test_secret_change_shows_masked_values_on_both_sides(tenant_a):
    token, _ = tenancy.token_create(tenant=tenant_a, name="ci")
    token.secret_hash = "0" * 64
    token.save()
    assert events_of(token)[-1].changes == {"secret_hash": [MASK, MASK]}


def test_rolled_back_change_records_nothing(tenant_a):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        tenancy.tenant_update(tenant=tenant_a, data={"name": "Renamed"})
        record(action="breaker.force_open", tenant=tenant_a, changes={"duration_s": 30})
        assert AuditEvent.objects.count() == before + 2
        raise RuntimeError("the change fails after the events were written")
    assert AuditEvent.objects.count() == before
    assert Tenant.objects.get(pk=tenant_a.pk).name == "Tenant A"


def test_named_operation_carries_parameters_context_and_a_valid_hash(tenant_a):
    actor = Actor(kind="user", id="7", display="alice")
    ctx = RequestContext(request_id="req-1", client_ip="2001:DB8::1", user_agent="curl/8", actor=actor, tenant=tenant_a)
    with context.bind(ctx):
        event = record(action="breaker.force_open", object_type="bulwark_resilience.breakerpolicy",
                       object_id="12", object_repr="payments", changes={"duration_s": 60})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.tenant, stored.actor_kind, stored.actor_id, stored.actor_display) == (tenant_a, "user", "7", "alice")
    assert (stored.request_id, stored.client_ip, stored.user_agent) == ("req-1", "2001:db8::1", "curl/8")
    assert stored.changes == {"duration_s": 60}
    assert stored.hash == event_hash(stored)


def test_job_door_records_the_system_actor_with_the_job_id(tenant_a):
    """A job binds Actor.system(id="job:<id>"); whatever service it calls records that actor."""
    with context.bind(RequestContext(actor=Actor.system(display="job audit.retention", id="job:42"))):
        model_update(instance=tenant_a, data={"name": "Renamed by a job"})
    event = AuditEvent.objects.filter(tenant=tenant_a, action="update").get()
    assert (event.actor_kind, event.actor_id, event.actor_display) == ("system", "job:42", "job audit.retention")


def test_without_a_bound_context_the_actor_is_system(tenant_a):
    event = record(action="cache.flush", tenant=tenant_a, changes={"tag": "users"})
    assert event.actor_kind == "system"


def test_each_tenant_has_its_own_chain(tenant_a, tenant_b):
    a1 = record(action="x.one", tenant=tenant_a)
    b1 = record(action="x.one", tenant=tenant_b)
    a2 = record(action="x.two", tenant=tenant_a)
    assert a2.prev_hash == a1.hash
    assert b1.prev_hash != a1.hash
    assert b1.prev_hash == AuditEvent.objects.filter(tenant=tenant_b).exclude(pk=b1.pk).order_by("-id")[0].hash


def test_platform_events_have_no_tenant_and_their_own_chain():
    first = record(action="platform.maintenance", changes={"on": True})
    second = record(action="platform.maintenance", changes={"on": False})
    assert first.tenant_id is None and second.prev_hash == first.hash


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_save_whose_event_fails_is_not_applied(tenant_a):
    """Django sends post_save after the write's own transaction; @audited makes the save and event one."""
    from unittest import mock

    with mock.patch("apps.core.audited._writer", side_effect=RuntimeError("audit store refused")), \
            pytest.raises(RuntimeError):
        tenant_a.name = "Never applied"
        tenant_a.save()
    assert Tenant.objects.get(pk=tenant_a.pk).name == "Tenant A"


def test_save_with_update_fields_records_only_the_fields_it_wrote(tenant_a):
    tenant_a.name = "Renamed in memory, never saved"
    tenant_a.is_active = False
    tenant_a.save(update_fields=["is_active"])
    assert Tenant.objects.get(pk=tenant_a.pk).name == "Tenant A"
    assert events_of(tenant_a)[-1].changes == {"is_active": [True, False]}


def test_an_object_with_an_empty_tenant_goes_to_the_platform_chain_not_the_actors_tenant(tenant_a):
    from apps.jobs.models import JobSchedule

    superuser_in_acme = RequestContext(actor=Actor(kind="user", id="1", display="root"), tenant=tenant_a)
    with context.bind(superuser_in_acme):
        schedule = JobSchedule.objects.create(name="nightly", type="jobs.ping", interval_min=60)
        objectless_event = record(action="members.export", tenant=None)
    (created,) = events_of(schedule)
    assert created.tenant_id is None
    assert objectless_event.tenant_id == tenant_a.pk  # no object: the context's tenant, as before
