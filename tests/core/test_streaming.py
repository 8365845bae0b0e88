"""Streaming under ASGI: exports and downloads are pulled in small batches, never read whole first."""
import json
from datetime import timedelta

import pytest
from django.test import AsyncClient
from django.utils import timezone

from apps.core.streaming import CHUNKS_PER_PULL, _pull


async def test_pull_reads_only_a_batch_ahead():
    consumed = []

    def lines():
        for n in range(10 * CHUNKS_PER_PULL):
            consumed.append(n)
            yield f"{n}\n"

    chunks = _pull(lines())
    first = await chunks.__anext__()
    assert first.splitlines()[0] == "0"
    assert len(consumed) == CHUNKS_PER_PULL  # the rest is still unread
    rest = [chunk async for chunk in chunks]
    assert "".join([first, *rest]).splitlines()[-1] == str(10 * CHUNKS_PER_PULL - 1)


@pytest.mark.django_db(transaction=True)
async def test_audit_export_is_an_async_stream_under_asgi_with_the_same_rows(tenant_a):
    from asgiref.sync import sync_to_async

    from apps.audit.services import record
    from apps.tenancy.services import token_create

    for n in range(3):
        await sync_to_async(record)(action="breaker.force_open", tenant=tenant_a, changes={"n": n})
    _, plaintext = await sync_to_async(token_create)(tenant=tenant_a, name="exporter", role="viewer")
    start = (timezone.now() - timedelta(hours=1)).isoformat()
    end = (timezone.now() + timedelta(hours=1)).isoformat()
    response = await AsyncClient().get(
        "/api/v1/audit/export", {"format": "jsonl", "start": start, "end": end},
        headers={"authorization": f"Bearer {plaintext}"},
    )
    assert response.status_code == 200
    assert response.is_async  # Django would otherwise have read the whole export into memory first
    body = "".join([chunk.decode() if isinstance(chunk, bytes) else chunk async for chunk in response.streaming_content])
    rows = [json.loads(line) for line in body.splitlines()]
    assert [r["changes"]["n"] for r in rows if r["action"] == "breaker.force_open"] == [0, 1, 2]


async def test_file_response_streams_in_chunks_under_asgi(tmp_path):
    from io import BytesIO

    from django.core.handlers.asgi import ASGIRequest

    from apps.core.streaming import FILE_CHUNK_BYTES, file_response

    path = tmp_path / "export.csv"
    path.write_bytes(b"x" * (3 * FILE_CHUNK_BYTES + 5))
    request = ASGIRequest({"type": "http", "method": "GET", "path": "/", "headers": []}, BytesIO())
    response = file_response(request, path.open("rb"), as_attachment=True, filename="export.csv")
    assert response.is_async
    assert response["Content-Length"] == str(3 * FILE_CHUNK_BYTES + 5)
    assert "export.csv" in response["Content-Disposition"]
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert body == path.read_bytes()
    response.close()
