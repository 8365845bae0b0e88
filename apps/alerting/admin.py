"""The operator console of alerting: rules with their current state, alerts firing first (acknowledge),
silences (expire), channels (secrets masked, send a test) and the delivery log."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.alerting import channel_config, selectors, services
from apps.alerting.models import Alert, AlertRule, AlertState, Channel, Delivery, Silence
from apps.core.errors import ApplicationError
from apps.tenancy.admin_base import ReadOnlyTenantAdmin, TenantScopedAdmin
from apps.tenancy.roles import Role


def _count(state: str) -> Coalesce:
    """A rule's alerts in `state`, as a subquery: unlike an aggregate it can order the base queryset."""
    counted = (Alert.objects.filter(rule=OuterRef("pk"), state=state).order_by().values("rule")
               .annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@admin.register(AlertRule)
class AlertRuleAdmin(TenantScopedAdmin):
    list_display = ["name", "metric", "comparator", "warning", "critical", "for_s", "firing", "pending", "enabled"]
    list_filter = ["enabled", "metric"]
    search_fields = ["name", "description"]
    filter_horizontal = ["channels"]

    def get_queryset(self, request):
        # Rules with firing alerts first, then pending ones: the page an operator opens at 3 a.m.
        return super().get_queryset(request).annotate(firing_count=_count(AlertState.FIRING),
                                                      pending_count=_count(AlertState.PENDING))

    def get_ordering(self, request):
        # Expressions, not the annotations' names: the base get_queryset orders before annotations exist.
        return [_count(AlertState.FIRING).desc(), _count(AlertState.PENDING).desc(), "name"]

    @admin.display(description="Firing", ordering="firing_count")
    def firing(self, rule: AlertRule) -> int:
        return rule.firing_count

    @admin.display(description="Pending", ordering="pending_count")
    def pending(self, rule: AlertRule) -> int:
        return rule.pending_count


@admin.register(Alert)
class AlertAdmin(ReadOnlyTenantAdmin):
    list_display = ["__str__", "rule", "severity", "state", "value", "fired_at", "acknowledged_by", "changed_at"]
    list_filter = ["state", "severity"]
    search_fields = ["fingerprint", "rule__name"]
    list_select_related = ["rule"]
    actions = ["acknowledge"]

    def get_ordering(self, request):
        return [selectors.STATE_ORDER, "-changed_at"]

    @admin.action(description="Acknowledge (stop repeats until the alert changes state)")
    def acknowledge(self, request, queryset) -> None:
        if not self._role_allows(request, Role.OPERATOR):
            self.message_user(request, "Acknowledging needs the operator role.", messages.ERROR)
            return
        done = 0
        for alert in queryset:
            try:
                services.acknowledge_alert(alert=alert)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{alert}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{done} alert(s) acknowledged.")


@admin.register(Silence)
class SilenceAdmin(TenantScopedAdmin):
    list_display = ["__str__", "starts_at", "ends_at", "is_active_now", "comment", "created_by"]
    actions = ["expire"]
    write_role = Role.OPERATOR

    @admin.display(description="Active", boolean=True)
    def is_active_now(self, silence: Silence) -> bool:
        return silence.is_active(timezone.now())

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user.get_username()[:150]
        super().save_model(request, obj, form, change)

    @admin.action(description="Expire now")
    def expire(self, request, queryset) -> None:
        for silence in queryset:
            try:
                services.silence_expire(silence=silence)
            except ApplicationError as exc:
                self.message_user(request, f"{silence}: {exc.message}", messages.WARNING)


@admin.register(Channel)
class ChannelAdmin(TenantScopedAdmin):
    list_display = ["name", "kind", "masked_config", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]
    readonly_fields = ["masked_config"]
    actions = ["send_test"]

    def get_fields(self, request, obj=None):
        fields = ["name", "kind", "config", "masked_config"]
        return (["tenant", *fields] if request.user.is_superuser else fields)

    @admin.display(description="Configuration (secrets masked)")
    def masked_config(self, channel: Channel) -> dict:
        return channel_config.masked(channel.kind, channel.config, channel.secrets)

    def save_model(self, request, obj, form, change) -> None:
        # Secret keys typed into `config` go to the write-only secrets, as through the API.
        data = {k: v for k, v in form.cleaned_data.items() if k in ("name", "kind", "config")}
        if change:
            fresh = Channel.objects.get(pk=obj.pk)
            services.channel_update(channel=fresh, data={k: data[k] for k in form.changed_data if k in data})
            return
        tenant = obj.tenant if request.user.is_superuser and obj.tenant_id else request.tenant
        obj.pk = services.channel_create(tenant=tenant, data=data).pk

    @admin.action(description="Send a test notification")
    def send_test(self, request, queryset) -> None:
        if not self._role_allows(request, Role.OPERATOR):
            self.message_user(request, "Sending a test needs the operator role.", messages.ERROR)
            return
        for channel in queryset:
            delivery = services.channel_test(channel=channel)
            level = messages.SUCCESS if delivery.status == "sent" else messages.ERROR
            self.message_user(request, f"{channel}: {delivery.status} {delivery.error}".strip(), level)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantAdmin):
    list_display = ["sent_at", "channel", "alert", "status", "attempt", "response_code", "latency_ms", "error"]
    list_filter = ["status", "channel__kind"]
    list_select_related = ["channel", "alert"]
