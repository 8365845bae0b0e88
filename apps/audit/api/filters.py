"""Query filters of the event list: the same ones the admin offers."""
from __future__ import annotations

import django_filters

from apps.audit.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")
    action = django_filters.CharFilter()
    actor_kind = django_filters.ChoiceFilter(choices=AuditEvent.ActorKind.choices)
    actor_id = django_filters.CharFilter()
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    request_id = django_filters.CharFilter()

    class Meta:
        model = AuditEvent
        fields = ["since", "until", "action", "actor_kind", "actor_id", "object_type", "object_id", "request_id"]
