"""factory_boy factories of the foundation. Apps keep theirs in tests/<app>/factories.py; the isolation
test finds every DjangoModelFactory in those modules, so a new tenant-owned model only needs a factory."""
from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from apps.tenancy import tokens
from apps.tenancy.models import ApiToken, Membership, Tenant


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-for-tests-123")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = "viewer"


class ApiTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiToken

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"token-{n}")
    role = "viewer"
    prefix = factory.Sequence(lambda n: f"t{n:07d}")
    secret_hash = factory.LazyFunction(lambda: tokens.hash_secret("not-a-real-secret"))
