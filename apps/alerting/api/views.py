"""The alerting API: rules, channels (with a test action), silences (with expire), alerts (history,
acknowledge) and the delivery log. Thin: every write is a service of apps.alerting.services."""
from __future__ import annotations

from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.alerting import selectors, services
from apps.alerting.api import serializers as s
from apps.alerting.models import Alert, AlertRule, AlertState, Channel, Delivery, Silence
from apps.tenancy.api.viewsets import TenantModelViewSet, TenantScopedViewSet
from apps.tenancy.roles import Role


class RuleViewSet(TenantModelViewSet):
    """Alert rules. Thresholds are in the metric's unit (rates as fractions 0–1); durations in whole seconds.
    A rule on cpu_percent, memory_percent, endpoint_p95_ms/p99_ms or endpoint_error_rate without thresholds
    gets the product brief's warning and critical levels."""

    queryset = AlertRule.objects.all()
    serializer_class = s.RuleOutputSerializer
    input_serializer_class = s.RuleInputSerializer
    filterset_fields = ["metric", "enabled"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return super().get_queryset().prefetch_related("channels").annotate(
            firing=Count("alerts", filter=Q(alerts__state=AlertState.FIRING)),
            pending=Count("alerts", filter=Q(alerts__state=AlertState.PENDING))).order_by("name", "pk")

    def output(self, instance, status_code: int = status.HTTP_200_OK) -> Response:
        return super().output(self.get_queryset().get(pk=instance.pk), status_code)

    def create_object(self, *, data: dict):
        return services.rule_create(tenant=self.request.tenant, data=data)

    def update_object(self, *, instance, data: dict):
        return services.rule_update(rule=instance, data=data)

    def delete_object(self, *, instance) -> None:
        services.rule_delete(rule=instance)


class ChannelViewSet(TenantModelViewSet):
    """Notification channels: `{"name", "kind": "webhook|slack|email|sms|dashboard", "config": {...}}`.
    Secret config keys are write-only; a webhook's signing secret is returned once, at creation."""

    queryset = Channel.objects.all()
    serializer_class = s.ChannelOutputSerializer
    input_serializer_class = s.ChannelInputSerializer
    filterset_fields = ["kind"]
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]
    action_roles = {"test": Role.OPERATOR}

    @extend_schema(request=s.ChannelInputSerializer, responses={201: s.ChannelCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = services.channel_create(tenant=request.tenant, data=serializer.validated_data)
        return Response(s.ChannelCreatedSerializer(channel).data, status=status.HTTP_201_CREATED)

    def update_object(self, *, instance, data: dict):
        return services.channel_update(channel=instance, data=data)

    def delete_object(self, *, instance) -> None:
        services.channel_delete(channel=instance)

    @extend_schema(request=None, responses={200: s.DeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a test notification now (one attempt) and answer its delivery log entry."""
        delivery = services.channel_test(channel=self.get_object())
        return Response(s.DeliverySerializer(delivery).data)


class SilenceViewSet(TenantModelViewSet):
    """Silences: alerts whose labels match every matcher are not notified between starts_at and ends_at."""

    queryset = Silence.objects.all()
    serializer_class = s.SilenceOutputSerializer
    input_serializer_class = s.SilenceInputSerializer
    write_role = Role.OPERATOR
    filterset_fields: list[str] = []
    ordering_fields = ["starts_at", "ends_at"]

    def create_object(self, *, data: dict):
        return services.silence_create(tenant=self.request.tenant, data=data)

    def update_object(self, *, instance, data: dict):
        return services.silence_update(silence=instance, data=data)

    @extend_schema(request=None, responses={200: s.SilenceOutputSerializer})
    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        """End the silence now."""
        return self.output(services.silence_expire(silence=self.get_object()))


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Alerts, firing first: one per rule and label set (severity included). `?state=&severity=&rule=`."""

    queryset = Alert.objects.all()
    serializer_class = s.AlertSerializer
    filter_backends: list = []
    action_roles = {"acknowledge": Role.OPERATOR}

    def get_queryset(self):
        if self.action != "list":
            return super().get_queryset()
        query = s.AlertQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = {k: v for k, v in query.validated_data.items() if k not in ("page", "page_size")}
        return selectors.alert_list(tenant=self.request.tenant, filters=filters)

    @extend_schema(parameters=[s.AlertQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: s.AlertEventSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """The alert's transitions, newest first, with the value that drove each."""
        events = selectors.alert_history(alert=self.get_object())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(s.AlertEventSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: s.AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Take a firing alert: no repeat notifications until it changes state (audited)."""
        return self.output(services.acknowledge_alert(alert=self.get_object()))


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The delivery log: every attempt, with status, response code, latency and error. `?channel=&alert=&status=`."""

    queryset = Delivery.objects.all()
    serializer_class = s.DeliverySerializer
    filter_backends: list = []

    def get_queryset(self):
        if self.action != "list":
            return super().get_queryset()
        query = s.DeliveryQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = {k: v for k, v in query.validated_data.items() if k not in ("page", "page_size")}
        return selectors.delivery_list(tenant=self.request.tenant, filters=filters)

    @extend_schema(parameters=[s.DeliveryQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
