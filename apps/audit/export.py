"""Row formats of an audit export (CSV and JSON lines), shared by the export job and the streaming API."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from django.core.serializers.json import DjangoJSONEncoder

from apps.audit.models import AuditEvent

FORMATS = ("csv", "jsonl")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
COLUMNS = (
    "id", "tenant", "timestamp", "actor_kind", "actor_id", "actor_display", "action", "object_type",
    "object_id", "object_repr", "changes", "request_id", "client_ip", "user_agent", "prev_hash", "hash",
)


def _row(event: AuditEvent, tenant_slugs: dict[int, str]) -> dict:
    return {
        "id": event.pk,
        "tenant": tenant_slugs.get(event.tenant_id, "") if event.tenant_id else "",
        "timestamp": event.timestamp.isoformat(),
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "actor_display": event.actor_display,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "changes": event.changes,
        "request_id": event.request_id,
        "client_ip": event.client_ip or "",
        "user_agent": event.user_agent,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def export_lines(events: Iterable[AuditEvent], *, fmt: str, tenant_slugs: dict[int, str]) -> Iterator[str]:
    """One text chunk per event (a CSV header first), so a caller can stream without holding the export."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "jsonl":
        for event in events:
            yield json.dumps(_row(event, tenant_slugs), cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(COLUMNS)
    yield take()
    for event in events:
        row = _row(event, tenant_slugs)
        row["changes"] = json.dumps(row["changes"], cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)
        writer.writerow([row[column] for column in COLUMNS])
        yield take()
