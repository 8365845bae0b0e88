"""`export_write`, the service the audit.export job calls: rows of a range, CSV or JSON lines, into a file."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.export import COLUMNS
from apps.audit.services import export_write, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(tenant_a, tenant_b):
    mine = [record(action="x.op", tenant=tenant_a, changes={"n": i}) for i in range(5)]
    record(action="x.op", tenant=tenant_b)
    record(action="platform.op")
    return mine


def _range():
    now = timezone.now()
    return {"start": now - timedelta(minutes=5), "end": now + timedelta(minutes=5)}


def test_jsonl_export_of_one_tenant_in_chain_order(events, tenant_a, settings):
    settings.BULWARK = {**settings.BULWARK, "AUDIT": {"EXPORT_CHUNK_SIZE": 2}}  # several round trips
    out = io.StringIO()
    written = export_write(tenant=tenant_a, fmt="jsonl", out=out, **_range())
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written == len(rows) == 6  # the tenant's creation and five operations
    assert [r["id"] for r in rows if r["action"] == "x.op"] == [e.pk for e in events]
    assert {r["tenant"] for r in rows} == {"tenant-a"}
    assert rows[1]["prev_hash"] == rows[0]["hash"]


def test_csv_export_of_every_tenant_counts_rows_not_the_header(events):
    out = io.StringIO()
    written = export_write(tenant=None, fmt="csv", out=out, **_range())
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == COLUMNS
    assert written == len(rows) - 1 == 9  # two tenant creations, seven operations
    assert {row[1] for row in rows[1:]} == {"tenant-a", "tenant-b", ""}


def test_empty_range_and_unknown_format(events, tenant_a):
    past = timezone.now() - timedelta(days=2)
    out = io.StringIO()
    assert export_write(tenant=tenant_a, start=past, end=past + timedelta(days=1), fmt="csv", out=out) == 0
    assert out.getvalue().splitlines() == [",".join(COLUMNS)]
    with pytest.raises(ValueError, match="Unknown export format 'xml'"):
        export_write(tenant=tenant_a, fmt="xml", out=io.StringIO(), **_range())
