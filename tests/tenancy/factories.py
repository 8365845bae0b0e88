"""Factories of tenancy's own models beyond the foundation's (found by the tenant-isolation test)."""
from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from apps.tenancy.models import Invitation
from tests.factories import TenantFactory


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = "viewer"
    token_hash = factory.Sequence(lambda n: f"{n:064d}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
