"""`audit_verify` walks each chain and names the first broken event; exit code non-zero on a break."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditAnchor, AuditEvent
from apps.audit.services import record

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(tenant_a, tenant_b):
    record(action="other.tenant", tenant=tenant_b)
    return [record(action=f"step.{i}", tenant=tenant_a, changes={"i": i}) for i in range(5)]


def test_intact_chains_verify(chain, capsys):
    call_command("audit_verify")
    call_command("audit_verify", tenant="tenant-a")
    out = capsys.readouterr().out
    assert "tenant tenant-a: OK, 6 event(s)" in out


def test_forged_content_is_caught_at_that_event(chain, tamper):
    forged = chain[2]
    tamper("UPDATE bulwark_audit_auditevent SET changes = %s WHERE id = %s", [json.dumps({"i": 99}), forged.pk])
    with pytest.raises(CommandError, match=f"BROKEN at event {forged.pk}: content does not match"):
        call_command("audit_verify", tenant="tenant-a")
    call_command("audit_verify", tenant="tenant-b")  # the other chain is untouched


def test_forged_row_with_a_recomputed_hash_breaks_the_next_link(chain, tamper):
    from apps.audit.chain import event_hash

    forged = AuditEvent.objects.get(pk=chain[1].pk)
    forged.changes = {"i": 99}
    tamper("UPDATE bulwark_audit_auditevent SET changes = %s, hash = %s WHERE id = %s",
           [json.dumps({"i": 99}), event_hash(forged), forged.pk])
    with pytest.raises(CommandError, match=f"BROKEN at event {chain[2].pk}: link broken"):
        call_command("audit_verify", tenant="tenant-a")


def test_deleted_event_is_caught_at_the_next_one(chain, tamper):
    tamper("DELETE FROM bulwark_audit_auditevent WHERE id = %s", [chain[3].pk])
    with pytest.raises(CommandError, match=f"BROKEN at event {chain[4].pk}"):
        call_command("audit_verify")


def test_deleted_start_of_chain_with_a_forged_anchor_is_caught(chain, tamper, tenant_a):
    first_ids = list(AuditEvent.objects.filter(tenant=tenant_a).order_by("id").values_list("id", "hash")[:2])
    tamper("DELETE FROM bulwark_audit_auditevent WHERE id IN (%s, %s)", [first_ids[0][0], first_ids[1][0]])
    AuditAnchor.objects.create(tenant=tenant_a, through_event_id=first_ids[1][0], last_hash=first_ids[1][1])
    with pytest.raises(CommandError, match="not vouched for"):
        call_command("audit_verify", tenant="tenant-a")


def test_unknown_tenant_is_a_clear_error(chain):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("audit_verify", tenant="nope")
