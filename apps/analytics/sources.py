"""Where series come from: a registry of readers by kind, and the built-in `ingested` kind.

A series key is `<kind>:<name>` (`ingested:orders_per_min`, `endpoint_rps:/api/v1/orders/`,
`cpu_percent`). Monitoring registers its kinds at start-up:

    register_series_source("endpoint_rps", reader, lister=routes_with_traffic, critical=None)

`reader(*, tenant, series, start, end, step_s) -> list[(datetime, float)]` returns the points of one series
(`series` is the full key) in [start, end), at about `step_s` apart; `lister(tenant) -> list[str]` names the
keys of that kind the scheduled jobs should look at; `critical` is a default threshold for the capacity
question ("when will this cross its critical threshold?"): a number, or `critical(*, tenant, series) -> float | None`
for a per-tenant level. Monitoring's kinds are registered by `apps.analytics.monitoring_series`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from apps.core.errors import ApplicationError

Reader = Callable[..., list[tuple[datetime, float]]]
Lister = Callable[..., list[str]]
Critical = float | Callable[..., float | None] | None

INGESTED = "ingested"


@dataclass(frozen=True)
class SeriesSource:
    kind: str
    reader: Reader
    lister: Lister | None = None
    critical: Critical = None


_sources: dict[str, SeriesSource] = {}


def register_series_source(kind: str, reader: Reader, *, lister: Lister | None = None,
                           critical: Critical = None) -> None:
    """Register (or replace, for reloads and tests) the reader of one series kind."""
    if not kind or ":" in kind:
        raise ValueError(f"series kind {kind!r}: a non-empty name without ':'")
    _sources[kind] = SeriesSource(kind=kind, reader=reader, lister=lister, critical=critical)


def unregister_series_source(kind: str) -> None:
    _sources.pop(kind, None)


def kind_of(series: str) -> str:
    return series.split(":", 1)[0]


def source_for(series: str) -> SeriesSource:
    """The source of a series key; an unknown kind is a 400 on the `series` field."""
    source = _sources.get(kind_of(series))
    if source is None:
        known = ", ".join(sorted(_sources)) or "none"
        raise ApplicationError(f"Unknown series kind {kind_of(series)!r} (known: {known}).",
                               extra={"errors": {"series": [f"Unknown series kind {kind_of(series)!r}."]}})
    return source


def read_series(*, tenant, series: str, start: datetime, end: datetime, step_s: int) -> list[tuple[datetime, float]]:
    return source_for(series).reader(tenant=tenant, series=series, start=start, end=end, step_s=step_s)


def list_series(*, tenant) -> list[str]:
    """Every series key the sources name for a tenant (the scheduled jobs' worklist), sorted."""
    keys: set[str] = set()
    for source in _sources.values():
        if source.lister is not None:
            keys.update(source.lister(tenant=tenant))
    return sorted(keys)


def critical_threshold(series: str, *, tenant=None) -> float | None:
    """The critical level of a series (per tenant when the source computes it)."""
    source = _sources.get(kind_of(series))
    if source is None or source.critical is None:
        return None
    if callable(source.critical):
        return None if tenant is None else source.critical(tenant=tenant, series=series)
    return float(source.critical)


def _read_ingested(*, tenant, series: str, start: datetime, end: datetime, step_s: int):
    from apps.analytics.models import SeriesPoint

    rows = (SeriesPoint.objects.for_tenant(tenant)
            .filter(series=series, timestamp__gte=start, timestamp__lt=end)
            .order_by("timestamp").values_list("timestamp", "value"))
    return list(rows)


def _list_ingested(*, tenant) -> list[str]:
    from apps.analytics.models import SeriesPoint

    return list(SeriesPoint.objects.for_tenant(tenant).values_list("series", flat=True).distinct())


register_series_source(INGESTED, _read_ingested, lister=_list_ingested)


def registered_kinds() -> set[str]:
    return set(_sources)
