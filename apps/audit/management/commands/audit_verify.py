"""`manage.py audit_verify [--tenant slug]`: walk the hash chains and report the first broken link."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.audit.selectors import chain_tenant_ids, chain_verify
from apps.tenancy.models import Tenant


class Command(BaseCommand):
    help = "Verify the audit hash chain of one tenant (--tenant slug) or of every tenant and the platform."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="Slug of the tenant whose chain to verify (default: every chain).")
        parser.add_argument(
            "--platform", action="store_true", help="Verify only the platform chain (events without a tenant)."
        )

    def handle(self, *args, tenant: str | None = None, platform: bool = False, **options) -> None:
        slugs = dict(Tenant.objects.values_list("pk", "slug"))
        if tenant:
            tenant_id = next((pk for pk, slug in slugs.items() if slug == tenant), None)
            if tenant_id is None:
                raise CommandError(f"No tenant with slug {tenant!r}.")
            tenant_ids = [tenant_id]
        elif platform:
            tenant_ids = [None]
        else:
            tenant_ids = chain_tenant_ids()
        broken = []
        for tenant_id in tenant_ids:
            report = chain_verify(tenant_id=tenant_id)
            name = f"tenant {slugs.get(tenant_id, tenant_id)}" if tenant_id is not None else "platform"
            if report.ok:
                self.stdout.write(f"{name}: OK, {report.checked} event(s)")
                continue
            where = f"event {report.broken_event_id}" if report.broken_event_id else "anchor"
            line = f"{name}: BROKEN at {where}: {report.reason}"
            self.stderr.write(line)
            broken.append(line)
        if broken:
            raise CommandError(f"{len(broken)} broken chain(s); first: {broken[0]}")
        self.stdout.write(self.style.SUCCESS(f"{len(tenant_ids)} chain(s) verified."))
