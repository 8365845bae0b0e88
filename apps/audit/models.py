"""The audit trail: one append-only, hash-chained event per configuration change or named operation."""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.tenancy.models import Tenant, TenantOwned, TenantQuerySet


class AppendOnlyError(Exception):
    """An attempt to change or delete audit events outside the retention service."""


class AuditEventQuerySet(TenantQuerySet):
    """Events are written by `services.record` and removed only by `services.retention_apply`.

    PostgreSQL refuses UPDATE and DELETE with a trigger; this is the same rule at the model layer, so it
    also holds on SQLite, which has no equivalent of a transaction-local setting to open the door.
    """

    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise AppendOnlyError(
            "Audit events are append-only: remove old ones with apps.audit.services.retention_apply()."
        )

    def retention_delete(self) -> int:
        """The one path that deletes events; only `services.retention_apply` calls it."""
        deleted, _ = super().delete()
        return deleted


class AuditEvent(TenantOwned):
    """One change or operation. Events without a tenant are platform events, visible to superusers only."""

    class ActorKind(models.TextChoices):
        USER = "user"
        TOKEN = "token"
        SYSTEM = "system"
        ANONYMOUS = "anonymous"

    # PROTECT: the trail outlives the configuration it describes; a tenant is deactivated, not deleted.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="+", null=True, blank=True, db_index=False
    )
    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_display = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp", "-id"]
        # Few indexes, each serving a read that matters: every one costs each INSERT. Reads are
        # tenant-scoped, so the tenant leads; filters on action or actor narrow a tenant's time range.
        indexes = [
            models.Index(fields=["tenant", "object_type", "object_id"]),  # an object's history
            models.Index(fields=["tenant", "id"], name="audit_event_chain_idx"),  # chain head, verify walk
            models.Index(fields=["tenant", "timestamp"], name="audit_event_time_idx"),  # lists, export, retention
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id} by {self.actor_display}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are append-only: remove old ones with apps.audit.services.retention_apply().")


class AuditAnchor(models.Model):
    """Where a chain starts after retention removed its beginning: the hash of the last removed event.

    `audit_verify` starts the walk from the newest anchor and checks that an `audit.retention` event of
    the same chain vouches for it, so a forged anchor is caught like a forged event.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    through_event_id = models.BigIntegerField(help_text="Events of the chain up to this id were removed.")
    last_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-through_event_id"]
        indexes = [models.Index(fields=["tenant", "through_event_id"], name="audit_anchor_chain_idx")]

    def __str__(self) -> str:
        return f"anchor of {self.tenant or 'platform'} through event {self.through_event_id}"
