"""`record()`: the one way anything writes to the audit trail."""
from __future__ import annotations

from typing import Any

from django.db import models

from apps.audit.models import AuditEvent
from apps.core import context
from apps.core.context import Actor


def object_type_of(obj: models.Model) -> str:
    return obj._meta.label_lower


def _tenant_of(obj: models.Model | None):
    if obj is None:
        return None
    from apps.tenancy.models import Tenant

    if isinstance(obj, Tenant):
        return obj
    return getattr(obj, "tenant", None)


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
    parameters go in `changes`. Actor and request details come from the bound context unless given.
    """
    ctx = context.current()
    actor = actor or ctx.actor or Actor.system()
    if tenant is None:
        tenant = _tenant_of(obj) or ctx.tenant
    if obj is not None:
        object_type = object_type or object_type_of(obj)
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    return AuditEvent.objects.create(
        tenant=tenant,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_display=actor.display[:200],
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:200],
        changes=changes or {},
        request_id=ctx.request_id,
        client_ip=ctx.client_ip,
        user_agent=ctx.user_agent,
    )
