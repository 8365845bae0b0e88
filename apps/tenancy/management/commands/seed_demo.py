"""Seed a demo: tenants acme and globex with users of each role, then every app's own demo data. Idempotent.

The demo hook: an app contributes demo data by naming a function on its AppConfig,
`demo = "apps.<app>.demo.seed"`, called as `seed(tenant=..., stdout=...)` once per demo tenant, in
INSTALLED_APPS order, inside one transaction. Tenancy owns the command because it owns the tenants.
"""
from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import import_string

from apps.core import context
from apps.core.context import Actor, RequestContext
from apps.tenancy.models import Membership, Tenant
from apps.tenancy.roles import Role

DEMO_USERS = [
    # (tenant slug, username, password, role)
    ("acme", "acme-admin", "acme-admin-demo", Role.ADMIN),
    ("acme", "acme-operator", "acme-operator-demo", Role.OPERATOR),
    ("acme", "acme-viewer", "acme-viewer-demo", Role.VIEWER),
    ("globex", "globex-admin", "globex-admin-demo", Role.ADMIN),
]
SUPERUSER = ("bulwark", "bulwark-superuser-demo")


def demo_seeders() -> list[Callable[..., None]]:
    """The `demo` hook of every installed app that declares one."""
    return [import_string(config.demo) for config in apps.get_app_configs() if getattr(config, "demo", None)]


class Command(BaseCommand):
    help = "Create (or refresh) the demo tenants, users and each app's demo configuration."

    def handle(self, *args, **options) -> None:
        with context.bind(RequestContext(actor=Actor.system("seed_demo"))), transaction.atomic():
            tenants = {
                "acme": Tenant.objects.get_or_create(slug="acme", defaults={"name": "Acme Corp"})[0],
                "globex": Tenant.objects.get_or_create(slug="globex", defaults={"name": "Globex"})[0],
            }
            User = get_user_model()
            for slug, username, password, role in DEMO_USERS:
                user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
                user.set_password(password)
                user.save()
                membership, created = Membership.objects.get_or_create(
                    tenant=tenants[slug], user=user, defaults={"role": role}
                )
                if not created and membership.role != role:
                    membership.role = role
                    membership.save()
            superuser, _ = User.objects.get_or_create(username=SUPERUSER[0], defaults={"email": "root@example.com"})
            superuser.is_superuser = superuser.is_staff = True
            superuser.set_password(SUPERUSER[1])
            superuser.save()
            for seed in demo_seeders():
                for tenant in tenants.values():
                    seed(tenant=tenant, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (username / password):"))
        for slug, username, password, role in DEMO_USERS:
            self.stdout.write(f"  {username:<16} {password:<22} {role} of {slug}")
        self.stdout.write(f"  {SUPERUSER[0]:<16} {SUPERUSER[1]:<22} platform superuser")
