"""The per-tenant hash chain: canonical content of an event, its hash, and the writer's lock on the chain."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import connection

from apps.audit.models import AuditAnchor, AuditEvent

# First key of the two-key form of pg_advisory_xact_lock: "audit chain" (an arbitrary constant, so the
# audit locks never collide with another app's advisory locks, which use other first keys).
ADVISORY_LOCK_CLASS = 0x42_41_55_44  # "BAUD"

HASHED_FIELDS = (
    "tenant_id", "timestamp", "actor_kind", "actor_id", "actor_display", "action", "object_type",
    "object_id", "object_repr", "changes", "request_id", "client_ip", "user_agent", "prev_hash",
)


def _canonical_number(value: Any) -> Any:
    # PostgreSQL jsonb gives 1e20 back as an integer; hashing integral floats as ints keeps the hash stable.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_number(v) for v in value]
    return value


def event_hash(event: AuditEvent) -> str:
    """SHA-256 over the event's content and the previous event's hash, in a canonical JSON form."""
    content = {name: getattr(event, name) for name in HASHED_FIELDS}
    content["timestamp"] = event.timestamp.isoformat()
    content["changes"] = _canonical_number(event.changes)
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def chain_filter(tenant_id: int | None) -> dict[str, Any]:
    return {"tenant_id": tenant_id} if tenant_id is not None else {"tenant__isnull": True}


def lock_chain(tenant_id: int | None) -> None:
    """Serialise writers of one chain until the end of the transaction.

    On PostgreSQL a transaction-scoped advisory lock per tenant; SQLite runs every transaction as
    BEGIN IMMEDIATE (see settings), which already admits one writer at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_CLASS, (tenant_id or 0) & 0x7FFFFFFF])


def head_hash(tenant_id: int | None) -> str:
    """Hash of the chain's last event (the anchor's when retention removed them all), '' for a new chain.

    Call under `lock_chain`: ids are taken after the lock, so id order is chain order.
    """
    last = (
        AuditEvent.objects.filter(**chain_filter(tenant_id)).order_by("-id").values_list("hash", flat=True).first()
    )
    if last is not None:
        return last
    anchor = AuditAnchor.objects.filter(**chain_filter(tenant_id)).order_by("-through_event_id").first()
    return anchor.last_hash if anchor else ""
