"""Tenants, their members and API tokens, and the base every tenant-owned model inherits."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from apps.core.audited import AuditedQuerySet, audited
from apps.tenancy.roles import Role


@audited()
class Tenant(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=63, unique=True)
    is_active = models.BooleanField(default=True, help_text="A disabled tenant's tokens and users are refused.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = AuditedQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class TenantQuerySet(AuditedQuerySet):
    def for_tenant(self, tenant: Tenant | int | None) -> TenantQuerySet:
        """The one entry point for reading tenant data; None reads nothing rather than everything."""
        if tenant is None:
            return self.none()
        return self.filter(tenant=tenant)


class TenantOwned(models.Model):
    """Abstract base: a non-null, indexed tenant and a queryset scoped through `for_tenant`."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class MembershipQuerySet(TenantQuerySet):
    def active(self) -> MembershipQuerySet:
        return self.filter(tenant__is_active=True, user__is_active=True)


@audited()
class Membership(TenantOwned):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bulwark_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__slug", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="tenancy_membership_user_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


# Usage time is operational data written by token_resolve with update(), which excluded fields allow.
@audited(exclude=("last_used_at",), secret=("secret_hash",))
class ApiToken(TenantOwned):
    """A bearer token. Only a SHA-256 of the secret is stored; the plaintext is shown once at creation.

    A fast hash is right here: the secret is 256 random bits, so there is nothing to brute-force,
    and every API request checks one.
    """

    PREFIX_LENGTH = 8

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=120, validators=[RegexValidator(r"^[\w .@:/-]+$", "Letters, digits and . @ : / - only.")])
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (bwk_{self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"


@audited(secret=("token_hash",))
class Invitation(TenantOwned):
    """An invitation to join a tenant, accepted by the invited user while signed in.

    It names the invitee by email or username, as the inviting admin typed it; nothing about the account
    (whether it exists, its email) is shown to the tenant. Only a SHA-256 of the single-use token is stored.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True, help_text="The invitee's email (or give a username).")
    username = models.CharField(max_length=150, blank=True, help_text="The invitee's username (or give an email).")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING,
                              editable=False)
    expires_at = models.DateTimeField()
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email or self.username} ({self.role})"

    def is_expired(self, now=None) -> bool:
        return self.expires_at <= (now or timezone.now())
