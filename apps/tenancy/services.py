"""Every write of tenancy: tenants, memberships and tokens."""
from __future__ import annotations

import hashlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, ConflictError
from apps.core.services import integrity_as_field_error, model_update
from apps.tenancy import tokens
from apps.tenancy.conf import tenancy_settings
from apps.tenancy.models import ApiToken, Invitation, InvitationStatus, Membership, Tenant
from apps.tenancy.roles import Role, role_at_least

log = logging.getLogger(__name__)


@transaction.atomic
def tenant_create(*, name: str, slug: str, is_active: bool = True) -> Tenant:
    tenant = Tenant(name=name, slug=slug, is_active=is_active)
    tenant.full_clean()
    tenant.save()
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, data: Mapping[str, Any]) -> Tenant:
    return model_update(instance=tenant, data=data)


ALREADY_MEMBER = "This user is already a member of the tenant."
USERNAME_UNAVAILABLE = (
    "This username is not available for a new account. To add someone who already has an account, "
    "send an invitation (/api/v1/members/invitations/)."
)


@transaction.atomic
def membership_create(*, tenant: Tenant, username: str, role: str, password: str, email: str = "") -> Membership:
    """Create a brand-new account and make it a member. Existing accounts are never enrolled here: they are
    invited (`invitation_create`) and accept themselves, so a tenant admin cannot pull in another tenant's
    user or read anything about them."""
    User = get_user_model()
    user = User(username=username, email=email)
    try:
        validate_password(password, user)
    except ValidationError as exc:  # the validators name no field; the caller should see which one
        raise ValidationError({"password": exc.messages}) from None
    user.set_password(password)
    try:
        user.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
        if any(error.code == "unique" for error in exc.error_dict.get("username", [])):
            errors["username"] = [USERNAME_UNAVAILABLE]
        raise ValidationError(errors) from None
    with integrity_as_field_error(field="username", message=USERNAME_UNAVAILABLE):
        user.save()
    membership_check_new(tenant=tenant, user=user)
    membership = Membership(tenant=tenant, user=user, role=role)
    membership.full_clean()
    try:
        with transaction.atomic():  # a concurrent twin passes the checks above; the constraint stops it
            membership.save()
    except IntegrityError:
        raise ValidationError({"username": [ALREADY_MEMBER]}) from None
    return membership


def membership_check_new(*, tenant: Tenant, user) -> None:
    """Refuse a second membership of one user in one tenant with a field error (the admin form calls it too)."""
    if Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValidationError({"username": [ALREADY_MEMBER]})


def membership_check_admins_remain(*, memberships: Iterable[Membership]) -> None:
    """Refuse when these memberships losing their admin role (demoted or deleted) leaves a tenant without one."""
    leaving: dict[int, set[int]] = defaultdict(set)
    for membership in memberships:
        if membership.role == Role.ADMIN:
            leaving[membership.tenant_id].add(membership.pk)
    for tenant_id, pks in leaving.items():
        if not Membership.objects.filter(tenant_id=tenant_id, role=Role.ADMIN).exclude(pk__in=pks).exists():
            raise ConflictError("A tenant must keep at least one admin.", code="last_admin")


def _lock_tenants(tenant_ids: Iterable[int]) -> None:
    # One writer of a tenant's memberships at a time, so two admins demoting each other at once cannot
    # both see the other as the remaining admin.
    list(Tenant.objects.select_for_update().filter(pk__in=set(tenant_ids)).order_by("pk").values_list("pk"))


@transaction.atomic
def membership_update(*, membership: Membership, role: str) -> Membership:
    _lock_tenants([membership.tenant_id])
    if role != Role.ADMIN:
        membership_check_admins_remain(memberships=[Membership.objects.get(pk=membership.pk)])
    return model_update(instance=membership, data={"role": role})


@transaction.atomic
def memberships_delete(*, memberships: Iterable[Membership]) -> int:
    """Delete memberships (one or a selection), each recorded in the audit trail; never the last admin."""
    pks = [membership.pk for membership in memberships]
    current = list(Membership.objects.filter(pk__in=pks))
    _lock_tenants(m.tenant_id for m in current)
    current = list(Membership.objects.filter(pk__in=pks))
    membership_check_admins_remain(memberships=current)
    for membership in current:
        membership.delete()
    return len(current)


def membership_delete(*, membership: Membership) -> None:
    memberships_delete(memberships=[membership])


def token_check_new(*, role: str, creator_role: str | None, expires_at: datetime | None) -> None:
    """Field errors of a new token (the admin's form calls it too)."""
    if creator_role is not None and not role_at_least(creator_role, role):
        raise ValidationError({"role": [f"A {creator_role} cannot create a token with the {role} role."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["Must be in the future."]})


@transaction.atomic
def token_create(
    *,
    tenant: Tenant,
    name: str,
    role: str = Role.VIEWER,
    created_by=None,
    creator_role: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Returns the token row and its plaintext, which is never retrievable again."""
    token_check_new(role=role, creator_role=creator_role, expires_at=expires_at)
    plaintext, parts = tokens.generate()
    token = ApiToken(
        tenant=tenant,
        name=name,
        role=role,
        created_by=created_by if getattr(created_by, "pk", None) else None,
        expires_at=expires_at,
    )
    token.prefix = parts.prefix
    token.secret_hash = tokens.hash_secret(parts.secret)
    token.full_clean()
    token.save()
    return token, plaintext


@transaction.atomic
def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is not None:
        raise ApplicationError("This token is already revoked.", code="already_revoked", status=409)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    return token


def _invitation_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invitation_recipient(invitation: Invitation) -> str:
    """Where the invitation is mailed: the typed email, or the email of the named account. Nobody when the
    account does not exist, has no email or is a platform superuser; the inviter is told none of this."""
    if invitation.email:
        return invitation.email
    user = get_user_model().objects.filter(username=invitation.username, is_active=True).first()
    if user is None or user.is_superuser or not user.email:
        return ""
    return user.email


def _invitation_mail(*, invitation: Invitation, recipient: str, accept_url: str, token: str) -> None:
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An administrator"
    body = (
        f"{inviter} invites you to join {invitation.tenant.name} on Bulwark as {invitation.role}.\n\n"
        f"Sign in with your own account, then accept:\n{accept_url}\n\n"
        f"or POST {{\"token\": \"{token}\"}} to /api/v1/members/invitations/accept/ while signed in.\n"
        f"The invitation works once and expires at {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"
    )
    try:
        send_mail(f"Invitation to {invitation.tenant.name} on Bulwark", body, None, [recipient])
    except Exception:  # after commit: the invitation stands, and its token was shown to the inviter
        log.warning("invitation %s: mail to its recipient failed", invitation.pk, exc_info=True)


@transaction.atomic
def invitation_create(
    *,
    tenant: Tenant,
    role: str,
    email: str = "",
    username: str = "",
    invited_by=None,
    accept_url: str = "",
    now: datetime | None = None,
) -> tuple[Invitation, str]:
    """Invite someone by email or username; returns the invitation and its token (shown once).

    The answer is the same whether or not such an account exists. The mail with the accept link goes out
    after commit (`accept_url` gets `?token=` appended).
    """
    if bool(email) == bool(username):
        raise ValidationError({"email": ["Give an email or a username (one of them)."]})
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        tenant=tenant, role=role, email=email.strip(), username=username.strip(),
        invited_by=invited_by if getattr(invited_by, "pk", None) else None,
        expires_at=now + timedelta(seconds=tenancy_settings.INVITATION_TTL_S),
    )
    invitation.token_hash = _invitation_hash(token)
    invitation.full_clean()
    invitation.save()
    recipient = _invitation_recipient(invitation)
    if recipient:
        link = f"{accept_url}?token={token}" if accept_url else ""
        transaction.on_commit(
            lambda: _invitation_mail(invitation=invitation, recipient=recipient, accept_url=link, token=token)
        )
    return invitation, token


def _invitee_matches(invitation: Invitation, user) -> bool:
    if invitation.username:
        return user.get_username() == invitation.username
    return bool(user.email) and user.email.strip().lower() == invitation.email.lower()


@transaction.atomic
def invitation_accept(*, token: str, user, now: datetime | None = None) -> Membership:
    """The signed-in invitee accepts: the membership exists (audited) and the invitation is used up."""
    now = now or timezone.now()
    invitation = (
        Invitation.objects.select_for_update().select_related("tenant")
        .filter(token_hash=_invitation_hash(token)).first()
    )
    if invitation is None:
        raise ApplicationError("No such invitation.", code="not_found", status=404)
    if invitation.status != InvitationStatus.PENDING:
        raise ConflictError(f"This invitation is {invitation.status}; it works once.", code="invitation_used")
    if invitation.is_expired(now):
        raise ConflictError("This invitation has expired; ask for a new one.", code="invitation_expired")
    if not invitation.tenant.is_active:
        raise ApplicationError("This tenant is disabled.", code="tenant_disabled", status=403)
    if not _invitee_matches(invitation, user):
        raise ApplicationError("This invitation is for another account.", code="wrong_user", status=403)
    if user.is_superuser:
        raise ApplicationError("Platform superusers are not enrolled by tenants.", code="superuser", status=403)
    membership_check_new(tenant=invitation.tenant, user=user)
    membership = Membership(tenant=invitation.tenant, user=user, role=invitation.role)
    membership.full_clean()
    membership.save()
    model_update(instance=invitation, data={"status": InvitationStatus.ACCEPTED, "accepted_at": now})
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> Invitation:
    if invitation.status != InvitationStatus.PENDING:
        raise ConflictError(f"This invitation is already {invitation.status}.", code="invitation_used")
    return model_update(instance=invitation, data={"status": InvitationStatus.REVOKED})
