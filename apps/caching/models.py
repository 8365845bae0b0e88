"""Cache policies (what to cache, how long, keyed and tagged how) and their per-minute hit statistics."""
from __future__ import annotations

import math
import re
import string
from urllib.parse import urlsplit

from django.apps import apps as django_apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from apps.core.audited import audited
from apps.core.patterns import pattern_error
from apps.tenancy.models import TenantOwned

SAFE_METHODS = ("GET", "HEAD")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_TAG = re.compile(r"^[A-Za-z0-9_.:{}/-]{1,100}$")


def _finite(value: float) -> None:
    # NaN passes the min/max validators and cannot be written to the audit log's JSON.
    if not math.isfinite(value):
        raise ValidationError("Must be a finite number.", code="invalid")



def tag_template_fields(template: str) -> list[str]:
    """The placeholders of a tag template such as `policy:{pk}`; only plain names are allowed."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"{template!r}: placeholders are plain names such as {{pk}}")
        names.append(name)
    return names


class VaryOn(models.TextChoices):
    TENANT = "tenant", "Tenant (every member of the tenant shares one copy)"
    ROLE = "role", "Role (one copy per role in the tenant)"
    USER = "user", "User (one copy per user or token)"
    ANONYMOUS = "anonymous", "Anonymous (one shared copy for anonymous requests; signed-in requests bypass)"


VARY_ON_HELP = (
    "Who shares one cached copy of a signed-in request. user (the default): each user or token gets its own "
    "copy, nobody is ever served someone else's answer. role: every member and token of the tenant with the "
    "same role gets the copy the first of them caused; tenant: every member and token of the tenant does. "
    "Choose role or tenant only for responses that do not depend on who asks (a report, a list every member "
    "sees the same). Responses marked Cache-Control: private (such as /api/v1/me) are stored only per user."
)


@audited()
class CachePolicy(TenantOwned):
    name = models.SlugField(max_length=63, help_text="Used by @cache_policy(\"name\") and in statistics.")
    route_name = models.CharField(
        max_length=200, blank=True, help_text='URL name to match, e.g. "v1:member-list" (or "member-list").'
    )
    path_pattern = models.CharField(
        max_length=300, blank=True, help_text=r"Regular expression matched against the path, e.g. ^/api/v1/reports/"
    )
    methods = models.JSONField(default=list, blank=True, help_text='Subset of ["GET", "HEAD"]; empty means both.')
    ttl_s = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1), MaxValueValidator(86_400)])
    vary_on = models.CharField(max_length=16, choices=VaryOn.choices, default=VaryOn.USER, help_text=VARY_ON_HELP)
    vary_headers = models.JSONField(default=list, blank=True, help_text="Request headers whose values enter the key.")
    ignored_query_params = models.JSONField(
        default=list, blank=True, help_text="Query parameters left out of the key (e.g. utm_source); all others count."
    )
    stale_while_revalidate_s = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(86_400)])
    stale_if_error_s = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(86_400)])
    tags = models.JSONField(default=list, blank=True, help_text='Fixed or templated from URL kwargs: ["reports", "policy:{pk}"].')
    cacheable_statuses = models.JSONField(default=list, blank=True, help_text="Statuses stored; empty means [200].")
    max_body_bytes = models.PositiveIntegerField(
        default=1024 * 1024, validators=[MinValueValidator(1), MaxValueValidator(64 * 1024 * 1024)]
    )
    adaptive_ttl = models.BooleanField(default=False, help_text="Grow TTL while content stays the same, shrink it on change.")
    ttl_min_s = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1), MaxValueValidator(86_400)])
    ttl_max_s = models.PositiveIntegerField(default=600, validators=[MinValueValidator(1), MaxValueValidator(86_400)])
    early_refresh_beta = models.FloatField(
        default=0.0, validators=[_finite, MinValueValidator(0.0), MaxValueValidator(10.0)],
        help_text="XFetch probabilistic early refresh; 0 turns it off, 1 is the usual value.",
    )
    invalidate_on_models = models.JSONField(
        default=list, blank=True, help_text='Models whose saves and deletes invalidate these tags: ["app_label.Model"].'
    )
    warm_urls = models.JSONField(default=list, blank=True, help_text="Paths fetched by the cache.warm job.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "cache policy"
        verbose_name_plural = "cache policies"
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="caching_policy_tenant_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def statuses(self) -> list[int]:
        return self.cacheable_statuses or [200]

    @property
    def longest_life_s(self) -> int:
        """The longest an entry of this policy may live in the store."""
        ttl = self.ttl_max_s if self.adaptive_ttl else self.ttl_s
        return ttl + max(self.stale_while_revalidate_s, self.stale_if_error_s)

    def clean(self) -> None:
        from apps.caching.conf import caching_settings

        errors: dict[str, str] = {}
        if not self.route_name and not self.path_pattern:
            errors["route_name"] = "Give a route name or a path pattern."
        if self.path_pattern and (reason := pattern_error(self.path_pattern)) is not None:
            errors["path_pattern"] = reason
        self._check_list(errors, "methods", lambda m: m in SAFE_METHODS, "Only GET and HEAD responses are cached.")
        self._check_list(errors, "vary_headers", lambda h: bool(_HEADER_NAME.match(h)), "Not a header name.")
        self._check_list(errors, "ignored_query_params", lambda p: 0 < len(p) <= 100, "Empty or too long.")
        self._check_list(errors, "tags", self._valid_tag, "Tags are up to 100 of A-Z a-z 0-9 _ . : / - and {name}.")
        self._check_list(errors, "warm_urls", self._valid_warm_url,
                         "A path starting with / or an http(s) URL of a host in ALLOWED_HOSTS.")
        self._check_list(errors, "invalidate_on_models", self._known_model, "Not an installed model (app_label.Model).")
        if isinstance(self.cacheable_statuses, list) and not all(
            isinstance(s, int) and not isinstance(s, bool) and 200 <= s <= 599 for s in self.cacheable_statuses
        ):
            errors["cacheable_statuses"] = "HTTP statuses between 200 and 599."
        elif not isinstance(self.cacheable_statuses, list):
            errors["cacheable_statuses"] = "Must be a list of statuses."
        if self.adaptive_ttl and self.ttl_min_s > self.ttl_max_s:
            errors["ttl_min_s"] = "Must not exceed ttl_max_s."
        elif self.adaptive_ttl and not self.ttl_min_s <= self.ttl_s <= self.ttl_max_s:
            errors["ttl_s"] = "With adaptive TTL the starting TTL lies within ttl_min_s and ttl_max_s."
        if not errors and self.longest_life_s > caching_settings.TAG_VERSION_TTL_S:
            errors["ttl_s"] = (
                f"TTL plus stale windows may not exceed {caching_settings.TAG_VERSION_TTL_S} s "
                "(BULWARK['CACHING']['TAG_VERSION_TTL_S'])."
            )
        if errors:
            raise ValidationError(errors)

    def _check_list(self, errors: dict, field: str, ok, message: str) -> None:
        value = getattr(self, field)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            errors[field] = "Must be a list of strings."
        elif len(value) > 50:
            errors[field] = "At most 50 entries."
        else:
            bad = [item for item in value if not ok(item)]
            if bad:
                errors[field] = f"{message} Refused: {', '.join(map(repr, bad[:5]))}"

    @staticmethod
    def _valid_tag(tag: str) -> bool:
        if not _TAG.match(tag):
            return False
        try:
            tag_template_fields(tag)
        except ValueError:
            return False
        return True

    @staticmethod
    def _valid_warm_url(url: str) -> bool:
        if len(url) > 2000 or not url.startswith(("/", "http://", "https://")):
            return False
        if url.startswith("/"):
            return True
        domain, _ = split_domain_port(urlsplit(url).netloc)
        return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)

    @staticmethod
    def _known_model(label: str) -> bool:
        try:
            django_apps.get_model(label)
        except (LookupError, ValueError):
            return False
        return True


class CacheStatMinute(TenantOwned):
    """Counters of one policy over one minute, summed across processes by the batched flush."""

    policy = models.ForeignKey(CachePolicy, on_delete=models.CASCADE, related_name="stat_minutes")
    minute = models.DateTimeField()
    hits = models.PositiveBigIntegerField(default=0)
    misses = models.PositiveBigIntegerField(default=0)
    stale = models.PositiveBigIntegerField(default=0, help_text="Stale copies served (SWR or stale-if-error).")
    revalidations = models.PositiveBigIntegerField(default=0, help_text="Refreshes of an existing entry.")
    origin_calls_saved = models.PositiveBigIntegerField(default=0)
    bytes_served = models.PositiveBigIntegerField(default=0, help_text="Body bytes served from the cache.")

    class Meta:
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["policy", "minute"], name="caching_stat_policy_minute")]

    def __str__(self) -> str:
        return f"{self.policy_id}@{self.minute:%Y-%m-%d %H:%M}"


STAT_FIELDS = ("hits", "misses", "stale", "revalidations", "origin_calls_saved", "bytes_served")
