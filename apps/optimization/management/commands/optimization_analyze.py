"""`manage.py optimization_analyze [--window 15m] [--tenant SLUG]`: findings to stdout, one per line.

Standard output carries only `kind<TAB>route<TAB>evidence` lines; progress and messages go to stderr.
"""
from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError

from apps.optimization import services
from apps.tenancy.models import Tenant

_WINDOW = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> int:
    match = _WINDOW.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise CommandError(f"--window: expected a duration such as 90s, 15m or 2h, got {text!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


class Command(BaseCommand):
    help = "Diagnose bottlenecks by kind over a window of sampled traffic; store and print the findings."

    def add_arguments(self, parser):
        parser.add_argument("--window", default=None, help="Duration such as 15m (default: OPTIMIZATION.WINDOW_S).")
        parser.add_argument("--tenant", default=None, help="Slug of one tenant (default: all traffic).")

    def handle(self, *args, window: str | None, tenant: str | None, **options):
        window_s = parse_window(window) if window else None
        scope = services.ALL
        if tenant is not None:
            scope = Tenant.objects.filter(slug=tenant).first()
            if scope is None:
                raise CommandError(f"--tenant: no tenant with slug {tenant!r}")

        def progress(pct: int, message: str) -> None:
            if options["verbosity"] > 0:
                self.stderr.write(f"[{pct:3d}%] {message}")

        found = services.analyze(window_s=window_s, tenant=scope, progress=progress)
        for candidate in sorted(found, key=lambda c: (c.kind, c.route, c.method, c.subject)):
            self.stdout.write(candidate.line())
        if options["verbosity"] > 0:
            self.stderr.write(f"{len(found)} finding(s)")
