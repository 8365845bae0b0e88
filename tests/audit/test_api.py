"""The API door (changes made through the API are recorded with their principal and request) and the audit API."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import record
from apps.tenancy.models import Membership
from tests.audit.factories import AuditEventFactory
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/audit/events/"
EXPORT = "/api/v1/audit/export"


def test_change_through_the_api_is_recorded_with_token_actor_and_request(tenant_a, token_client):
    member = MembershipFactory(tenant=tenant_a, role="viewer")
    client = token_client(tenant_a, "admin")
    response = client.patch(f"/api/v1/members/{member.pk}/", {"role": "operator"}, format="json",
                            HTTP_X_REQUEST_ID="req-api-1", HTTP_USER_AGENT="pytest-agent")
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="update", object_type="bulwark_tenancy.membership", object_id=str(member.pk))
    assert event.changes == {"role": ["viewer", "operator"]}
    assert event.actor_kind == "token" and event.actor_display.startswith("token:test-admin")
    assert (event.request_id, event.client_ip, event.user_agent) == ("req-api-1", "127.0.0.1", "pytest-agent")
    assert event.tenant == tenant_a


def test_change_through_a_session_is_recorded_with_the_user(tenant_a, member_client):
    client = member_client(tenant_a, "admin")
    response = client.post("/api/v1/tokens/", {"name": "deploy", "role": "viewer"}, format="json")
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="create", object_type="bulwark_tenancy.apitoken")
    user = Membership.objects.filter(tenant=tenant_a).get().user
    assert (event.actor_kind, event.actor_id, event.actor_display) == ("user", str(user.pk), user.username)


def test_refused_change_records_nothing(tenant_a, token_client):
    client = token_client(tenant_a, "admin")
    before = AuditEvent.objects.count()
    response = client.post("/api/v1/tokens/", {"name": "bad name!", "role": "viewer"}, format="json")
    assert response.status_code == 400
    assert AuditEvent.objects.count() == before


def test_viewer_lists_own_tenant_events_newest_first_with_filters(tenant_a, tenant_b, token_client):
    AuditEventFactory(tenant=tenant_a, action="breaker.force_open", object_repr="payments")
    AuditEventFactory(tenant=tenant_a, action="cache.flush", object_repr="users")
    AuditEventFactory(tenant=tenant_b, action="cache.flush", object_repr="users")
    client = token_client(tenant_a, "viewer")
    body = client.get(EVENTS).json()
    rows = body["results"]
    assert all(row["tenant"] == "tenant-a" for row in rows)
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)
    flushes = client.get(EVENTS, {"action": "cache.flush"}).json()["results"]
    assert [(r["action"], r["object_repr"]) for r in flushes] == [("cache.flush", "users")]
    assert client.get(EVENTS, {"search": "paym"}).json()["count"] == 1
    assert client.get(EVENTS, {"actor_kind": "system", "object_type": "bulwark_resilience.breakerpolicy"}).json()["count"] == 2
    future = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert client.get(EVENTS, {"since": future}).json()["count"] == 0


def test_bad_filter_is_a_field_level_400(tenant_a, token_client):
    response = token_client(tenant_a, "viewer").get(EVENTS, {"actor_kind": "robot", "since": "yesterday"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"actor_kind", "since"}


def test_events_are_read_only_and_need_a_principal(tenant_a, token_client, api_client):
    event = AuditEventFactory(tenant=tenant_a)
    client = token_client(tenant_a, "admin")
    assert client.delete(f"{EVENTS}{event.pk}/").status_code == 405
    assert client.patch(f"{EVENTS}{event.pk}/", {"action": "x"}, format="json").status_code == 405
    assert api_client.get(EVENTS).status_code in (401, 403)
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_platform_events_are_not_visible_to_tenants(tenant_a, token_client):
    platform = record(action="platform.maintenance")
    client = token_client(tenant_a, "admin")
    ids = {row["id"] for row in client.get(EVENTS, {"page_size": 500}).json()["results"]}
    assert platform.pk not in ids
    assert client.get(f"{EVENTS}{platform.pk}/").status_code == 404


def _window():
    now = timezone.now()
    return {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}


def test_export_jsonl_streams_the_tenants_events_of_the_range(tenant_a, tenant_b, token_client):
    mine = [AuditEventFactory(tenant=tenant_a, changes={"n": i}) for i in range(3)]
    AuditEventFactory(tenant=tenant_b)
    response = token_client(tenant_a, "viewer").get(EXPORT, {"format": "jsonl", **_window()})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert "attachment" in response["Content-Disposition"]
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert {r["tenant"] for r in rows} == {"tenant-a"}
    exported = [r for r in rows if r["action"] == "breaker.force_open"]
    assert [r["id"] for r in exported] == [e.pk for e in mine]
    assert exported[-1]["changes"] == {"n": 2} and exported[-1]["hash"] == mine[-1].hash


def test_export_csv_has_a_header_and_one_row_per_event(tenant_a, token_client):
    client = token_client(tenant_a, "viewer")
    AuditEventFactory(tenant=tenant_a, object_repr='quote " and, comma')
    response = client.get(EXPORT, {"format": "csv", **_window()})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == AuditEvent.objects.filter(tenant=tenant_a).count()
    assert rows[-1]["object_repr"] == 'quote " and, comma'
    assert json.loads(rows[-1]["changes"]) == {"duration_s": 60}


def test_export_outside_the_range_is_empty(tenant_a, token_client):
    AuditEventFactory(tenant=tenant_a)
    past = timezone.now() - timedelta(days=3)
    response = token_client(tenant_a, "viewer").get(
        EXPORT, {"format": "jsonl", "start": past.isoformat(), "end": (past + timedelta(days=1)).isoformat()})
    assert b"".join(response.streaming_content) == b""


@pytest.mark.parametrize("params, fields", [
    ({"format": "xml"}, {"format", "start", "end"}),
    ({"format": "csv", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, {"end"}),
    ({"format": "csv", "start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, {"end"}),
    ({"format": "csv", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "tenant": "x"}, {"tenant"}),
])
def test_bad_export_query_is_a_field_level_400(tenant_a, token_client, params, fields):
    response = token_client(tenant_a, "viewer").get(EXPORT, params)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == fields


def test_export_needs_a_principal(api_client):
    assert api_client.get(EXPORT, {"format": "csv", **_window()}).status_code in (401, 403)


def test_event_list_query_count_does_not_grow_with_events(tenant_a, token_client, django_assert_max_num_queries):
    client = token_client(tenant_a, "viewer")
    client.get(EVENTS)  # warm the token cache
    for _ in range(20):
        AuditEventFactory(tenant=tenant_a)
    with django_assert_max_num_queries(3):  # count, page (with tenants), nothing per row
        assert client.get(EVENTS).status_code == 200
