"""Every write of the audit trail: `record()` (the one way anything writes an event), export and retention."""
from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from typing import Any, TextIO

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from apps.audit import chain
from apps.audit.conf import audit_settings
from apps.audit.export import export_lines
from apps.audit.models import AuditAnchor, AuditEvent
from apps.audit.selectors import chain_tenant_ids, events_in_range, tenant_slugs
from apps.core import context
from apps.core.context import Actor
from apps.tenancy.models import Tenant


def object_type_of(obj: models.Model) -> str:
    return obj._meta.label_lower


_NO_TENANT_FIELD = object()


def _tenant_of(obj: models.Model | None, fallback: Tenant | None) -> Tenant | None:
    """The chain an event of `obj` belongs to: its own tenant when it has a tenant field, even an empty one.

    An object with an empty tenant (a platform schedule) goes to the platform chain, never to the tenant
    the acting superuser happens to have active, whose members would otherwise read it.
    """
    if isinstance(obj, Tenant):
        return obj
    if obj is None or getattr(type(obj), "tenant_id", _NO_TENANT_FIELD) is _NO_TENANT_FIELD:
        return fallback
    return obj.tenant if obj.tenant_id is not None else None


def _normal_ip(value: str | None) -> str | None:
    # Stored as PostgreSQL inet, which prints addresses canonically; hash the same form it gives back.
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def record(
    *,
    action: str,
    obj: models.Model | None = None,
    tenant=None,
    changes: dict[str, Any] | None = None,
    actor: Actor | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
) -> AuditEvent:
    """Write one event. Call inside the transaction of the change, so a rolled-back change leaves none.

    `action` is create / update / delete or a named operation such as `breaker.force_open`, whose
    parameters go in `changes`. Actor and request details come from the bound context unless given
    (no context bound, e.g. a shell or a management command: the actor is `system`).
    """
    ctx = context.current()
    actor = actor or context.current_actor()
    if tenant is None:
        tenant = _tenant_of(obj, fallback=ctx.tenant)
    if obj is not None:
        object_type = object_type or object_type_of(obj)
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    event = AuditEvent(
        tenant_id=tenant.pk if tenant is not None else None,
        timestamp=timezone.now(),
        actor_kind=actor.kind,
        actor_id=str(actor.id)[:64],
        actor_display=actor.display[:200],
        action=action[:64],
        object_type=object_type[:100],
        object_id=str(object_id)[:64],
        object_repr=object_repr[:200],
        # Through JSON once, so what is hashed is exactly what the database gives back to the verifier.
        changes=json.loads(json.dumps(changes or {}, cls=DjangoJSONEncoder)),
        request_id=ctx.request_id[:64],
        client_ip=_normal_ip(ctx.client_ip),
        user_agent=ctx.user_agent[:512],
    )
    # savepoint=False: inside the change's transaction this adds no SAVEPOINT round trips; alone, it is one.
    with transaction.atomic(savepoint=False):
        chain.lock_chain(event.tenant_id)
        event.prev_hash = chain.head_hash(event.tenant_id)
        event.hash = chain.event_hash(event)
        event.save(force_insert=True)
    return event


def export_write(*, tenant: Tenant | None, start: datetime | None, end: datetime | None, fmt: str, out: TextIO) -> int:
    """Stream the events of [start, end) as "csv" or "jsonl" into a text file; returns the rows written.

    tenant None exports every tenant's events and the platform's. Rows are read in chunks, never all at once.
    """
    events = events_in_range(tenant=tenant, start=start, end=end).iterator(
        chunk_size=audit_settings.EXPORT_CHUNK_SIZE
    )
    rows = -1 if fmt == "csv" else 0  # the CSV header is not a row
    for line in export_lines(events, fmt=fmt, tenant_slugs=tenant_slugs()):
        out.write(line)
        rows += 1
    return max(rows, 0)


def _retain_chain(*, tenant_id: int | None, older_than: datetime, actor: Actor | None) -> int:
    with transaction.atomic():
        chain.lock_chain(tenant_id)
        in_chain = AuditEvent.objects.filter(**chain.chain_filter(tenant_id))
        # Remove a prefix of the chain only: everything before the first event that is recent enough.
        first_kept = in_chain.filter(timestamp__gte=older_than).order_by("id").values_list("id", flat=True).first()
        doomed = in_chain if first_kept is None else in_chain.filter(id__lt=first_kept)
        last = doomed.order_by("-id").values("id", "hash").first()
        if last is None:
            return 0
        count = doomed.count()
        tenant = Tenant(pk=tenant_id) if tenant_id is not None else None
        # The event goes first, so the chain is never empty and it vouches for the anchor below.
        record(
            action="audit.retention",
            tenant=tenant,
            actor=actor,
            object_type="bulwark_audit.auditevent",
            object_repr=f"{count} event(s) before {older_than.isoformat()}",
            changes={
                "older_than": older_than.isoformat(),
                "deleted": count,
                "through_event_id": last["id"],
                "anchor_hash": last["hash"],
            },
        )
        AuditAnchor.objects.create(tenant_id=tenant_id, through_event_id=last["id"], last_hash=last["hash"])
        if connection.vendor == "postgresql":
            # The append-only trigger lets a DELETE through only while this transaction-local flag is on;
            # a rollback (of this transaction or its savepoint) turns it off again.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('bulwark.audit_retention', 'on', true)")
        in_chain.filter(id__lte=last["id"]).retention_delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('bulwark.audit_retention', 'off', true)")
        return count


def retention_apply(*, tenant: Tenant | None = None, older_than: datetime, actor: Actor | None = None) -> int:
    """Delete events older than the cut-off, of one tenant or of all chains; returns how many.

    Each chain affected gets an `audit.retention` event and an anchor (the hash of its last removed
    event), so `audit_verify` still passes afterwards. Each chain is trimmed in its own transaction.
    """
    tenant_ids = [tenant.pk] if tenant is not None else chain_tenant_ids()
    return sum(_retain_chain(tenant_id=tenant_id, older_than=older_than, actor=actor) for tenant_id in tenant_ids)
