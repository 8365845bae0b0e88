"""Rate-limit policies (runtime configuration, audited) and their per-minute decision counts."""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from apps.core.audited import audited
from apps.core.patterns import pattern_error
from apps.tenancy.models import TenantOwned
from apps.tenancy.roles import Role

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ANONYMOUS_ROLE = "anonymous"
ROLE_CHOICES = (ANONYMOUS_ROLE, *Role.values)
PERIOD_S = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@audited()
class RateLimitPolicy(TenantOwned):
    class MatchKind(models.TextChoices):
        ANY = "any", "Any request"
        ROUTE = "route", "URL names (comma-separated, e.g. admin:login)"
        PATH = "path", "URL path regular expression"
        NAMED = "named", "Only where named (check API, DRF throttle)"

    class KeyKind(models.TextChoices):
        IP = "ip", "Client IP (trusted-proxy aware)"
        USER = "user", "User (client IP when anonymous)"
        TOKEN = "token", "API token (client IP without one)"
        TENANT = "tenant", "Tenant"
        HEADER = "header", "Request header"

    class Algorithm(models.TextChoices):
        GCRA = "gcra", "GCRA / token bucket with burst (strict; the default)"
        SLIDING_WINDOW = "sliding_window", "Sliding window (approximate; use GCRA for a strict limit)"
        MOVING_WINDOW = "moving_window", "Moving window (exact rolling cap; per-key log, small limits)"

    class Period(models.TextChoices):
        SECOND = "second"
        MINUTE = "minute"
        HOUR = "hour"
        DAY = "day"

    class Mode(models.TextChoices):
        ENFORCE = "enforce", "Enforce"
        SHADOW = "shadow", "Shadow (decide and count, never block)"

    class FailureMode(models.TextChoices):
        OPEN = "open", "Open (allow when the store is unreachable)"
        CLOSED = "closed", "Closed (refuse when the store is unreachable)"

    name = models.CharField(
        max_length=64,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9_.-]*$", "Lowercase letters, digits and _ . - only.")],
        help_text="Shown in the RateLimit headers and used by the check API and the DRF throttle.",
    )
    description = models.CharField(max_length=200, blank=True)
    match_kind = models.CharField(max_length=8, choices=MatchKind.choices, default=MatchKind.ANY)
    match_value = models.CharField(
        max_length=500, blank=True, help_text="URL names for 'route', a regular expression for 'path'."
    )
    methods = models.CharField(max_length=64, blank=True, help_text="Comma-separated HTTP methods; blank: all.")
    roles = models.CharField(
        max_length=64, blank=True, help_text="Comma-separated: anonymous, viewer, operator, admin; blank: all."
    )
    key_kind = models.CharField(max_length=8, choices=KeyKind.choices, default=KeyKind.USER)
    key_header = models.CharField(max_length=64, blank=True, help_text="Header name when the key is a header.")
    algorithm = models.CharField(
        max_length=16, choices=Algorithm.choices, default=Algorithm.GCRA,
        help_text="GCRA: strict, O(1). Sliding window: a weighted estimate that can let up to about twice the "
                  "rate through within one rolling period; use GCRA for a strict limit. Moving window: an exact "
                  "cap on every rolling period, keeping one entry per admitted unit (rate at most "
                  "RATELIMIT.MOVING_WINDOW_MAX_RATE).",
    )
    rate = models.IntegerField(help_text="Requests allowed per period.")
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MINUTE)
    burst = models.IntegerField(
        null=True, blank=True, help_text="GCRA: requests allowed at once (blank: the rate). Ignored by the window algorithms."
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.ENFORCE)
    failure_mode = models.CharField(max_length=8, choices=FailureMode.choices, default=FailureMode.OPEN)
    priority = models.IntegerField(default=100, help_text="Lower first; breaks ties between equally strict policies.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name = "rate-limit policy"
        verbose_name_plural = "rate-limit policies"
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="ratelimit_policy_tenant_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.rate}/{self.period})"

    @property
    def method_list(self) -> list[str]:
        return [m.upper() for m in _csv(self.methods)]

    @property
    def role_list(self) -> list[str]:
        return _csv(self.roles)

    @property
    def route_list(self) -> list[str]:
        return _csv(self.match_value)

    @property
    def broken(self) -> str | None:
        """Why this policy cannot be applied (a path pattern stored before the RE2 rules); None when fine."""
        if self.match_kind == self.MatchKind.PATH:
            return pattern_error(self.match_value)
        return None

    @property
    def effective_burst(self) -> int:
        return self.burst if self.burst is not None else self.rate

    def validate_unique(self, exclude=None) -> None:
        # The admin form excludes the tenant, so Django would skip the (tenant, name) check and the
        # database would answer with an IntegrityError (a 500) instead of a field message.
        super().validate_unique(exclude)
        if self.tenant_id is not None:
            clash = RateLimitPolicy.objects.filter(tenant_id=self.tenant_id, name=self.name).exclude(pk=self.pk)
            if clash.exists():
                raise ValidationError({"name": "A policy with this name already exists in this tenant."})

    def clean(self) -> None:
        from apps.ratelimit.conf import ratelimit_settings
        from apps.ratelimit.matching import known_route_names

        errors: dict[str, str] = {}
        if self.rate is not None and self.rate < 1:
            errors["rate"] = "The rate must be at least 1 request per period."
        if self.burst is not None and self.burst < 1:
            errors["burst"] = "The burst must be at least 1."
        max_logged = ratelimit_settings.MOVING_WINDOW_MAX_RATE
        if self.algorithm == self.Algorithm.MOVING_WINDOW and self.rate is not None and self.rate > max_logged:
            errors["rate"] = (f"The moving window keeps one entry per request: at most {max_logged} per period. "
                              "Use GCRA for larger limits.")
        if self.match_kind == self.MatchKind.ROUTE:
            routes = self.route_list
            unknown = sorted(set(routes) - known_route_names())
            if not routes:
                errors["match_value"] = "Name at least one URL, e.g. admin:login."
            elif unknown:
                errors["match_value"] = f"Unknown URL name(s): {', '.join(unknown)}."
        elif self.match_kind == self.MatchKind.PATH:
            if not self.match_value:
                errors["match_value"] = "Give a regular expression matched against the URL path."
            elif (reason := pattern_error(self.match_value)) is not None:
                errors["match_value"] = reason
        elif self.match_value:
            errors["match_value"] = f"Leave empty when the match is {self.match_kind!r}."
        bad_methods = sorted(set(self.method_list) - set(HTTP_METHODS))
        if bad_methods:
            errors["methods"] = f"Unknown HTTP method(s): {', '.join(bad_methods)}."
        bad_roles = sorted(set(self.role_list) - set(ROLE_CHOICES))
        if bad_roles:
            errors["roles"] = f"Unknown role(s): {', '.join(bad_roles)}. Choose from {', '.join(ROLE_CHOICES)}."
        if self.key_kind == self.KeyKind.HEADER and not _HEADER_NAME.match(self.key_header or ""):
            errors["key_header"] = "Give the header name (letters, digits and -), e.g. X-Client-Id."
        elif self.key_kind != self.KeyKind.HEADER and self.key_header:
            errors["key_header"] = "Only used when the key is a request header."
        if errors:
            raise ValidationError(errors)


class RateLimitStat(TenantOwned):
    """Decisions of one policy in one minute, written in batches (never per request)."""

    policy = models.ForeignKey(RateLimitPolicy, on_delete=models.CASCADE, related_name="stats")
    minute = models.DateTimeField(help_text="Start of the minute (UTC).")
    allowed = models.PositiveBigIntegerField(default=0)
    denied = models.PositiveBigIntegerField(default=0)
    shadow_denied = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["policy", "minute"], name="ratelimit_stat_policy_minute")]

    def __str__(self) -> str:
        return f"{self.policy_id} @ {self.minute:%Y-%m-%d %H:%M}"
