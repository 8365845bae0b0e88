"""Every write of monitoring: rollups, downsampling, ingest, thresholds and system samples."""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import record as audit_record
from apps.core import histogram
from apps.core.clock import SYSTEM_CLOCK
from apps.core.context import Actor
from apps.core.errors import ApplicationError
from apps.core.services import model_update
from apps.core.store import StoreUnavailable, store_key
from apps.monitoring.aggregate import STATUS_CLASSES, MinuteAgg
from apps.monitoring.backends.base import Key, MetricsStore
from apps.monitoring.conf import monitoring_settings
from apps.monitoring.models import Endpoint, EndpointRollup, Thresholds
from apps.tenancy.models import Tenant

MINUTE, HOUR = EndpointRollup.Resolution.MINUTE, EndpointRollup.Resolution.HOUR
log = logging.getLogger(__name__)


# --- rollup rows ----------------------------------------------------------------------------------------------

def endpoint_for(*, tenant_id: int | None, route: str, method: str) -> Endpoint:
    lookup = {"tenant_id": tenant_id, "route": route[:255], "method": method[:10]}
    endpoint = Endpoint.objects.filter(**lookup).first()
    if endpoint is not None:
        return endpoint
    try:
        with transaction.atomic():
            return Endpoint.objects.create(**lookup)
    except IntegrityError:  # another process created it first
        return Endpoint.objects.get(**lookup)


def agg_of_row(row: EndpointRollup) -> MinuteAgg:
    agg = MinuteAgg()
    agg.classes = [0, row.count_1xx, row.count_2xx, row.count_3xx, row.count_4xx, row.count_5xx]
    agg.duration_ms_sum = row.duration_ms_sum
    agg.duration_ms_min = row.duration_ms_min if row.duration_ms_min is not None else math.inf
    agg.duration_ms_max = row.duration_ms_max or 0.0
    agg.db_ms_sum = row.db_ms_sum
    agg.queries_sum = row.queries_sum
    agg.bytes_sum = row.bytes_sum
    agg.hist = {int(b): int(n) for b, n in row.histogram.items()}
    return agg


def _add_to_row(row: EndpointRollup, agg: MinuteAgg) -> None:
    total = agg_of_row(row).merge(agg)
    for i in STATUS_CLASSES:
        setattr(row, f"count_{i}xx", total.classes[i])
    row.duration_ms_sum = total.duration_ms_sum
    row.duration_ms_min = total.duration_ms_min if total.duration_ms_min != math.inf else None
    row.duration_ms_max = total.duration_ms_max
    row.db_ms_sum = total.db_ms_sum
    row.queries_sum = total.queries_sum
    row.bytes_sum = total.bytes_sum
    row.histogram = {str(b): n for b, n in sorted(total.hist.items())}


def _add(endpoint: Endpoint, resolution_s: int, start: datetime, agg: MinuteAgg) -> None:
    row, _ = EndpointRollup.objects.select_for_update().get_or_create(
        endpoint=endpoint, resolution_s=resolution_s, start=start)
    _add_to_row(row, agg)
    row.save()


def _add_minute(key: Key, agg: MinuteAgg) -> None:
    tenant_id, route, method, minute = key
    endpoint = endpoint_for(tenant_id=tenant_id, route=route, method=method)
    _add(endpoint, MINUTE, datetime.fromtimestamp(minute * 60, tz=UTC), agg)


@transaction.atomic
def rollup_add(*, batch: Mapping[Key, MinuteAgg]) -> int:
    """Add per-minute figures to the minute rows (creating endpoints as they appear); returns the keys added.

    All or nothing, except a key the database refuses as data (DataError: a figure beyond its column, e.g.
    counts past a bigint): that key is logged with its figures and dropped (quarantined), so it never holds
    back the rest of the batch, other routes or other tenants, nor fails again at every rollup.
    """
    try:
        with transaction.atomic():
            for key, agg in batch.items():
                _add_minute(key, agg)
        return len(batch)
    except DataError:
        pass  # find the refused keys, one savepoint each
    added = 0
    for key, agg in batch.items():
        try:
            with transaction.atomic():
                _add_minute(key, agg)
        except DataError as exc:
            log.error("monitoring rollup: the database refused %r (%s); its figures are dropped: counts by class "
                      "%s, duration sum %r ms, queries %r, bytes %r", key, str(exc).strip(), agg.classes[1:],
                      agg.duration_ms_sum, agg.queries_sum, agg.bytes_sum)
            continue
        added += 1
    return added


def rollup_fold(*, tenant: Tenant | None, store: MetricsStore | None = None, now: float | None = None) -> dict:
    """Fold the tenant's closed minutes (and the platform's) out of the store into minute rows.

    A minute is closed once it ended `ROLLUP_GRACE_S` ago. The store hands each minute out atomically,
    so two rollups running at once never fold the same figures twice; a failed write puts them back. A key
    the database refuses as data is dropped and logged (see `rollup_add`), counted in `quarantined`.
    """
    from apps.monitoring.recorder import sink

    store = store or sink.store
    now = SYSTEM_CLOCK.time() if now is None else now
    before_minute = int((now - float(monitoring_settings.ROLLUP_GRACE_S)) // 60)
    folded = quarantined = 0
    for tenant_id in ({tenant.pk, None} if tenant is not None else {None}):
        batch = store.fold(tenant_id=tenant_id, before_minute=before_minute)
        if not batch:
            continue
        try:
            added = rollup_add(batch=batch)
        except Exception:
            store.merge(batch)
            raise
        folded += added
        quarantined += len(batch) - added
    return {"folded": folded, "quarantined": quarantined, "before_minute": before_minute}


def rollup_downsample(*, now: datetime | None = None, actor: Actor | None = None) -> dict:
    """Minute rows older than MINUTE_RETENTION_HOURS become hour rows; hour rows past HOUR_RETENTION_DAYS go.

    Platform-wide; one audit event (`monitoring.retention`) says what moved and what was deleted.
    """
    now = now or timezone.now()
    minute_cutoff = now - timedelta(hours=float(monitoring_settings.MINUTE_RETENTION_HOURS))
    hour_cutoff = now - timedelta(days=float(monitoring_settings.HOUR_RETENTION_DAYS))
    with transaction.atomic():
        old = list(EndpointRollup.objects.select_for_update()
                   .filter(resolution_s=MINUTE, start__lt=minute_cutoff).order_by("endpoint_id", "start"))
        hours: dict[tuple[int, datetime], MinuteAgg] = {}
        for row in old:
            hour = row.start.replace(minute=0, second=0, microsecond=0)
            hours.setdefault((row.endpoint_id, hour), MinuteAgg()).merge(agg_of_row(row))
        for (endpoint_id, hour), agg in hours.items():
            row, _ = EndpointRollup.objects.select_for_update().get_or_create(
                endpoint_id=endpoint_id, resolution_s=HOUR, start=hour)
            _add_to_row(row, agg)
            row.save()
        EndpointRollup.objects.filter(pk__in=[row.pk for row in old]).delete()
        dropped, _ = EndpointRollup.objects.filter(resolution_s=HOUR, start__lt=hour_cutoff).delete()
        changes = {"minutes_downsampled": len(old), "hours_written": len(hours), "hours_deleted": dropped,
                   "minute_cutoff": minute_cutoff.isoformat(), "hour_cutoff": hour_cutoff.isoformat()}
        audit_record(action="monitoring.retention", actor=actor, object_type="bulwark_monitoring.endpointrollup",
                     changes=changes)
    return changes


# --- ingest ---------------------------------------------------------------------------------------------------

def _dedup_key(tenant: Tenant, batch_id: str) -> str:
    return store_key("monitoring", f"{{m{tenant.pk}}}", "batch", batch_id)


def _bound_routes(tenant: Tenant, data: dict[str, Any]) -> None:
    """A tenant has at most MAX_ROUTES_PER_TENANT endpoints: routes beyond fold into `<other>`, so pushed
    data cannot grow rows, Redis keys or /metrics labels without bound."""
    from apps.monitoring.models import OTHER_ROUTE

    limit = int(monitoring_settings.MAX_ROUTES_PER_TENANT)
    known = set(Endpoint.objects.filter(tenant=tenant).values_list("route", "method")[:limit + 1])
    for item in [*data.get("records", []), *data.get("histograms", [])]:
        pair = (item["route"], item["method"])
        if pair in known:
            continue
        if len(known) >= limit:
            item["route"] = OTHER_ROUTE
            continue
        endpoint_for(tenant_id=tenant.pk, route=item["route"], method=item["method"])
        known.add(pair)


def ingest_batch(*, tenant: Tenant, data: dict[str, Any], store: MetricsStore | None = None) -> dict:
    """Add a validated batch (records and wire histograms) to the same store request metrics go to.

    Idempotent per `batch_id`: a repeat changes nothing and answers `duplicate`. Everything of the batch is
    merged in one store call, so a batch lands whole or (the store failing) not at all, and can be resent.
    """
    from apps.monitoring.recorder import sink

    store = store or sink.store
    _bound_routes(tenant, data)
    batch: dict[Key, MinuteAgg] = {}
    for item in data.get("records", []):
        minute = int(item["timestamp"].timestamp() // 60)
        key = (tenant.pk, item["route"], item["method"], minute)
        status_class = item["status"] // 100
        batch.setdefault(key, MinuteAgg()).add(status_class, item["duration_ms"], 0.0, 0, 0)
    for item in data.get("histograms", []):
        minute = int(item["timestamp"].timestamp() // 60)
        key = (tenant.pk, item["route"], item["method"], minute)
        agg = MinuteAgg()
        for name, n in item["status_counts"].items():
            agg.classes[int(name[0])] += n
        agg.hist = histogram.from_wire(item)
        agg.duration_ms_sum = item["sum_ms"]
        buckets = sorted(agg.hist)
        agg.duration_ms_min = item.get("min_ms") or histogram.bucket_value_ms(buckets[0])
        agg.duration_ms_max = item.get("max_ms") or histogram.bucket_value_ms(buckets[-1])
        batch.setdefault(key, MinuteAgg()).merge(agg)
    store_down = ApplicationError("The metrics store is unavailable; send the batch again.",
                                  code="store_unavailable", status=503)
    guard = sink.guard
    if not guard.available():
        raise store_down
    key = _dedup_key(tenant, data["batch_id"])
    try:
        if not store.claim(key, int(monitoring_settings.INGEST_DEDUP_TTL_S)):
            guard.succeeded()
            return {"batch_id": data["batch_id"], "duplicate": True, "accepted": 0}
        try:
            if batch:
                store.merge(batch)
        except Exception:
            # Forgotten so the client's resend lands. Should the store fail between the two calls, the claim
            # stays and the resend is answered as a duplicate: the one window this can lose a batch.
            store.release(key)
            raise
    except StoreUnavailable as exc:
        guard.failed(exc)
        raise store_down from exc
    guard.succeeded()
    accepted = len(data.get("records", [])) + sum(sum(h["status_counts"].values()) for h in data.get("histograms", []))
    return {"batch_id": data["batch_id"], "duplicate": False, "accepted": accepted}


# --- thresholds -----------------------------------------------------------------------------------------------

def thresholds_get(*, tenant: Tenant) -> Thresholds:
    """The tenant's thresholds; the defaults (unsaved) until an admin edits them."""
    return Thresholds.objects.for_tenant(tenant).first() or Thresholds(tenant=tenant)


@transaction.atomic
def thresholds_update(*, tenant: Tenant, data: dict[str, Any]) -> Thresholds:
    current = Thresholds.objects.for_tenant(tenant).select_for_update().first()
    if current is None:
        current = Thresholds(tenant=tenant)
        for field, value in data.items():
            setattr(current, field, value)
        current.full_clean()
        current.save()
        return current
    return model_update(instance=current, data=data)


# --- system samples -------------------------------------------------------------------------------------------

_local_claims: dict[str, float] = {}


def slot_claim(*, name: str, slot: int, ttl_s: int, now: float | None = None) -> bool:
    """True for the one caller (across processes and hosts) that claims `name`'s `slot` first.

    Through the recorder's StoreGuard: while the store is down, each process claims for itself (a sample
    or a downsampling twice is better than none during an outage).
    """
    from apps.monitoring.recorder import sink

    key = store_key("monitoring", "claim", name, slot)

    def locally() -> bool:
        moment = SYSTEM_CLOCK.monotonic() if now is None else now
        for stale in [k for k, until in _local_claims.items() if until <= moment]:
            del _local_claims[stale]
        if key in _local_claims:
            return False
        _local_claims[key] = moment + ttl_s
        return True

    return sink.read(lambda: sink.store.claim(key, ttl_s), locally)


def sample_record(*, host: str, figures: dict[str, Any], taken_at: datetime | None = None):
    from apps.monitoring.models import SystemSample

    rest = {k: v for k, v in figures.items() if k not in ("cpu_percent", "memory_percent", "disk_percent")}
    return SystemSample.objects.create(
        host=host, taken_at=taken_at or timezone.now(), cpu_percent=figures["cpu_percent"],
        memory_percent=figures["memory_percent"], disk_percent=figures["disk_percent"], data=rest)


def sample_take(*, host: str, now: float | None = None):
    """Take and store one sample of this host, unless this host's current slot (`SAMPLE_EVERY_S`) already
    has one (taken by another process of the host, or a run of the job). Returns the sample or None.

    CPU % is the host's average since its previous sample (psutil's CPU times, kept in the sample), so
    taking a sample never blocks to measure it, whichever process of the host takes the next one.
    """
    from apps.monitoring import sampler
    from apps.monitoring.models import SystemSample

    now = SYSTEM_CLOCK.time() if now is None else now
    every_s = float(monitoring_settings.SAMPLE_EVERY_S)
    if not slot_claim(name=f"sample:{host}", slot=int(now // every_s), ttl_s=max(2, math.ceil(2 * every_s))):
        return None
    previous = (SystemSample.objects.filter(host=host, taken_at__gte=datetime.fromtimestamp(now - 3 * every_s, tz=UTC))
                .order_by("-taken_at").values_list("data", flat=True).first())
    figures = sampler.take_sample(previous_cpu=(previous or {}).get("cpu_times"))
    return sample_record(host=host, figures=figures, taken_at=datetime.fromtimestamp(now, tz=UTC))


def samples_purge(*, older_than: datetime) -> int:
    from apps.monitoring.models import SystemSample

    deleted, _ = SystemSample.objects.filter(taken_at__lt=older_than).delete()
    return deleted
