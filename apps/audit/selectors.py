"""Reads of the audit trail: filtered event lists, export ranges and verification of the hash chains."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from apps.audit.chain import chain_filter, event_hash
from apps.audit.conf import audit_settings
from apps.audit.models import AuditAnchor, AuditEvent
from apps.tenancy.models import Tenant


def events_in_range(*, tenant: Tenant | None, start: datetime | None, end: datetime | None) -> QuerySet[AuditEvent]:
    """Events with start <= timestamp < end in id (chain) order; tenant None means every tenant's."""
    events = AuditEvent.objects.all() if tenant is None else AuditEvent.objects.for_tenant(tenant)
    if start is not None:
        events = events.filter(timestamp__gte=start)
    if end is not None:
        events = events.filter(timestamp__lt=end)
    return events.order_by("id")


def tenant_slugs() -> dict[int, str]:
    return dict(Tenant.objects.values_list("pk", "slug"))


def chain_tenant_ids() -> list[int | None]:
    """Every chain that has events: each tenant's, and None for the platform chain."""
    ids = set(AuditEvent.objects.order_by().values_list("tenant_id", flat=True).distinct())
    return sorted(ids, key=lambda i: (i is not None, i or 0))


@dataclass(frozen=True)
class ChainReport:
    tenant_id: int | None
    checked: int
    broken_event_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_event_id is None and not self.reason


def chain_verify(*, tenant_id: int | None) -> ChainReport:
    """Walk one chain in id order; report the first event whose link or content does not match.

    A changed event fails its own hash; a removed or inserted one breaks the next event's link; a
    chain shortened at its start needs an anchor vouched for by an `audit.retention` event.
    """
    anchor = AuditAnchor.objects.filter(**chain_filter(tenant_id)).order_by("-through_event_id").first()
    expected_prev = anchor.last_hash if anchor else ""
    events = (
        AuditEvent.objects.filter(**chain_filter(tenant_id))
        .order_by("id")
        .iterator(chunk_size=audit_settings.EXPORT_CHUNK_SIZE)
    )
    checked = 0
    anchor_vouched = anchor is None
    for event in events:
        checked += 1
        if anchor is not None and event.pk <= anchor.through_event_id:
            return ChainReport(tenant_id, checked, event.pk, "event is older than the retention anchor")
        if event.prev_hash != expected_prev:
            return ChainReport(tenant_id, checked, event.pk, "link broken: prev_hash is not the previous event's hash")
        if event_hash(event) != event.hash:
            return ChainReport(tenant_id, checked, event.pk, "content does not match its hash")
        if (
            not anchor_vouched
            and event.action == "audit.retention"
            and event.changes.get("through_event_id") == anchor.through_event_id
            and event.changes.get("anchor_hash") == anchor.last_hash
        ):
            anchor_vouched = True
        expected_prev = event.hash
    if not anchor_vouched:
        return ChainReport(tenant_id, checked, None, f"anchor through event {anchor.through_event_id} is not vouched for by an audit.retention event")
    return ChainReport(tenant_id, checked)
