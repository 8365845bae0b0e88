"""Alert rules, the alerts they raise (one per rule and label set) with their history, notification
channels, silences, notification groups and the delivery log."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from apps.alerting.conf import CHANNEL_KINDS
from apps.alerting.matching import LABEL_NAME_MAX, is_label_name, matcher_errors, template_errors
from apps.core import metric_kinds
from apps.core.audited import audited
from apps.tenancy.models import TenantOwned

NAME_VALIDATOR = RegexValidator(r"^[\w .:/-]+$", "Letters, digits, spaces and _ . : / - only.")
DAY_S = 86_400

# The product brief's warning and critical levels, offered when a rule on these metrics gives none.
DEFAULT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "cpu_percent": (75, 90),
    "memory_percent": (70, 85),
    "endpoint_p95_ms": (500, 1000),
    "endpoint_p99_ms": (500, 1000),
    "endpoint_error_rate": (0.02, 0.05),
}


class Comparator(models.TextChoices):
    GT = ">", "above"
    GTE = ">=", "at or above"
    LT = "<", "below"
    LTE = "<=", "at or below"


class Severity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    SLACK = "slack", "Slack"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    DASHBOARD = "dashboard", "Dashboard"


assert tuple(ChannelKind.values) == CHANNEL_KINDS


# Labels every alert carries, set by the evaluation: a rule's own labels cannot take these names.
ALERT_LABELS = ("alertname", "rule_id", "severity")
GROUP_BY_MAX = 10


def _seconds(max_s: int):
    return [MinValueValidator(0), MaxValueValidator(max_s)]


@audited(secret=("secret", "secrets"))
class Channel(TenantOwned):
    """Where notifications go. `config` holds what may be shown; `secrets` (a Slack webhook URL, an SMS
    provider's token) and `secret` (the webhook's HMAC key, generated) are write-only and masked."""

    name = models.CharField(max_length=100, validators=[NAME_VALIDATOR])
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    config = models.JSONField(default=dict, blank=True)
    secrets = models.JSONField(default=dict, blank=True, editable=False)
    secret = models.CharField(max_length=128, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="alerting_channel_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        from apps.alerting.channel_config import config_errors

        errors = config_errors(self.kind, self.config, self.secrets)
        if errors:
            raise ValidationError({"config": errors})


@audited(exclude=("updated_at",))
class AlertRule(TenantOwned):
    name = models.CharField(max_length=100, validators=[NAME_VALIDATOR])
    description = models.TextField(blank=True, max_length=2000)
    enabled = models.BooleanField(default=True)
    metric = models.CharField(max_length=100, help_text="A registered metric kind (apps.core.metric_kinds).")
    matchers = models.JSONField(default=dict, blank=True,
                                help_text='Label matchers: {"route": "api/v1/x"}, or "=~<RE2 pattern>".')
    comparator = models.CharField(max_length=2, choices=Comparator.choices, default=Comparator.GT)
    warning = models.FloatField(null=True, blank=True, help_text="In the metric's unit; rates are fractions 0–1.")
    critical = models.FloatField(null=True, blank=True)
    window_s = models.PositiveIntegerField(default=60, validators=[MinValueValidator(60), MaxValueValidator(DAY_S)],
                                           help_text="The window the metric is read over.")
    for_s = models.PositiveIntegerField(default=60, validators=_seconds(DAY_S),
                                        help_text="How long the condition must hold before the alert fires.")
    keep_firing_for_s = models.PositiveIntegerField(default=0, validators=_seconds(DAY_S))
    group_by = models.JSONField(default=list, blank=True,
                                help_text="Labels that split notifications into groups (besides the rule).")
    group_wait_s = models.PositiveIntegerField(default=10, validators=_seconds(3600))
    group_interval_s = models.PositiveIntegerField(default=300, validators=_seconds(DAY_S))
    repeat_interval_s = models.PositiveIntegerField(default=4 * 3600, validators=[MinValueValidator(60),
                                                                                  MaxValueValidator(7 * DAY_S)])
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True,
                                   help_text="summary / description templates: {value}, {threshold}, {route}...")
    channels = models.ManyToManyField(Channel, blank=True, related_name="rules")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="alerting_rule_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        kind = metric_kinds.get(self.metric)
        if kind is None:
            known = ", ".join(k.name for k in metric_kinds.all_kinds())
            errors["metric"] = [f"Unknown metric {self.metric!r}; one of: {known}."]
        if self.warning is None and self.critical is None:
            errors["critical"] = ["Give a warning or a critical threshold (or both)."]
        elif self.warning is not None and self.critical is not None and self.warning != self.critical:
            rising = self.comparator in (Comparator.GT, Comparator.GTE)
            if rising != (self.critical > self.warning):
                word = "above" if rising else "below"
                errors["critical"] = [f"With {self.comparator!r} the critical level must be {word} the warning level."]
        if kind is not None and kind.unit == "fraction":
            for name in ("warning", "critical"):
                value = getattr(self, name)
                if value is not None and not 0 <= value <= 1:
                    errors[name] = ["A rate is a fraction from 0 to 1 (2 % is 0.02)."]
        if matcher_errors(self.matchers):
            errors["matchers"] = matcher_errors(self.matchers)
        if group_by_errors(self.group_by):
            errors["group_by"] = group_by_errors(self.group_by)
        for name, value in (("labels", self.labels), ("annotations", self.annotations)):
            problems = _string_map_errors(value)
            if name == "labels" and not problems:
                problems = label_errors(value, scope=kind.labels if kind is not None else ())
            if name == "annotations" and not problems:
                problems = [f"{key}: {error}" for key, text in value.items() for error in template_errors(text)]
            if problems:
                errors[name] = problems
        if errors:
            raise ValidationError(errors)


def group_by_errors(group_by) -> list[str]:
    if not isinstance(group_by, list) or not all(isinstance(name, str) for name in group_by):
        return ["Must be a list of label names."]
    errors = []
    if len(group_by) > GROUP_BY_MAX:
        errors.append(f"At most {GROUP_BY_MAX} label names.")
    errors += [f"{name[:LABEL_NAME_MAX]!r} is not a label name (letters, digits and _, at most {LABEL_NAME_MAX})."
               for name in group_by if not is_label_name(name)]
    if len(set(group_by)) != len(group_by):
        errors.append("Each label name once.")
    return errors


def label_errors(labels: dict, *, scope) -> list[str]:
    """A rule's labels join the alert's: they may not take the names of the alert's own labels or of the
    metric's scope labels (the alert would no longer say which rule, severity or route it is)."""
    errors = []
    for name in labels:
        if not is_label_name(name):
            errors.append(f"{name[:LABEL_NAME_MAX]!r} is not a label name (letters, digits and _, "
                          f"at most {LABEL_NAME_MAX}).")
        elif name in ALERT_LABELS:
            errors.append(f"{name!r} is set on every alert by Bulwark ({', '.join(ALERT_LABELS)}).")
        elif name in scope:
            errors.append(f"{name!r} is a label of the metric's scope ({', '.join(scope)}); match on it instead.")
    return errors


def _string_map_errors(value) -> list[str]:
    if not isinstance(value, dict):
        return ["Must be an object of names to strings."]
    return [f"{key!r}: must be a string of at most 2000 characters." for key, text in value.items()
            if not isinstance(text, str) or len(text) > 2000 or not key]


class AlertState(models.TextChoices):
    INACTIVE = "inactive", "Inactive"
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class Alert(TenantOwned):
    """One alert per rule and label set (severity included), found again by its fingerprint.
    Operational data, written by the evaluation in bulk and only when something changed; not audited
    (acknowledgements are, by their service)."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    fingerprint = models.CharField(max_length=32)
    labels = models.JSONField(default=dict)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.INACTIVE)
    value = models.FloatField(null=True, blank=True, help_text="The value that drove the last transition.")
    active_since = models.DateTimeField(null=True, blank=True, help_text="When the condition began to hold.")
    fired_at = models.DateTimeField(null=True, blank=True)
    clear_since = models.DateTimeField(null=True, blank=True,
                                       help_text="Firing, but the condition no longer holds since (keep_firing_for).")
    resolved_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)
    notified_state = models.CharField(max_length=16, blank=True, help_text="The state last notified.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-changed_at"]
        constraints = [models.UniqueConstraint(fields=["rule", "fingerprint"], name="alerting_alert_fingerprint")]
        indexes = [models.Index(fields=["tenant", "state"], name="alerting_alert_state")]

    def __str__(self) -> str:
        return f"{self.labels.get('alertname', self.rule_id)} {self.severity} {self.fingerprint[:8]}"


class AlertEvent(TenantOwned):
    """One transition of an alert, with the value that drove it: the alert's history."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    from_state = models.CharField(max_length=16, choices=AlertState.choices)
    to_state = models.CharField(max_length=16, choices=AlertState.choices)
    value = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.from_state} → {self.to_state} @ {self.at:%Y-%m-%d %H:%M:%S}"


@audited()
class Silence(TenantOwned):
    """Notifications of alerts whose labels match are held back between starts_at and ends_at."""

    matchers = models.JSONField(help_text='{"alertname": "High errors", "route": "=~api/.*"}; all must match.')
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    comment = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=150, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"silence {self.pk}: {self.matchers}"

    def clean(self) -> None:
        errors = {}
        if not self.matchers:
            errors["matchers"] = ["Give at least one matcher (a silence of everything is a disabled channel)."]
        elif matcher_errors(self.matchers):
            errors["matchers"] = matcher_errors(self.matchers)
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = ["Must be after starts_at."]
        if errors:
            raise ValidationError(errors)

    def is_active(self, now) -> bool:
        return self.starts_at <= now < self.ends_at


class AlertGroup(TenantOwned):
    """A rule's notification group (one per value of its group_by labels): when it last notified, and which
    alerts that notification carried, so group_interval and repeat_interval can be kept."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="groups")
    key = models.CharField(max_length=32)
    labels = models.JSONField(default=dict)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    last_firing = models.JSONField(default=list, help_text="Fingerprints of the firing alerts last notified.")

    class Meta:
        ordering = ["rule", "key"]
        constraints = [models.UniqueConstraint(fields=["rule", "key"], name="alerting_group_key")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.key[:8]}"


class Notification(TenantOwned):
    """One message of a group: its Alertmanager-format payload, sent to each of the rule's channels."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="notifications")
    alert = models.ForeignKey(Alert, null=True, on_delete=models.SET_NULL, related_name="+",
                              help_text="The group's first alert.")
    status = models.CharField(max_length=16)  # firing / resolved, Alertmanager's group status
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.status} notification {self.pk}"


class DeliveryStatus(models.TextChoices):
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Delivery(TenantOwned):
    """One attempt to send one notification to one channel: the delivery log."""

    notification = models.ForeignKey(Notification, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="deliveries", help_text="Empty for a test notification.")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
    attempt = models.PositiveIntegerField(default=1)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at", "-pk"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.channel} #{self.attempt} {self.status}"

