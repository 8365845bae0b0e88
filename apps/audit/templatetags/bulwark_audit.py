"""`{% audit_history_link original %}`: the admin change page's link to an audited object's trail."""
from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.html import format_html

from apps.audit.services import object_type_of
from apps.core.audited import is_audited

register = template.Library()


@register.simple_tag
def audit_history_link(obj) -> str:
    if obj is None or obj.pk is None or not is_audited(type(obj)):
        return ""
    query = urlencode({"object_type": object_type_of(obj), "object_id": str(obj.pk)})
    url = f"{reverse('admin:bulwark_audit_auditevent_changelist')}?{query}"
    return format_html('<li><a href="{}" class="audit-history-link">Audit trail</a></li>', url)
