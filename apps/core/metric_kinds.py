"""Metric kinds: the named figures an alert rule can watch.

An app that can read a figure registers its kind here (monitoring: endpoint latency, error rate, rps, host
samples, queue figures; the hot-path apps' counters through monitoring; analytics: forecast crossings and
anomaly scores). Alerting evaluates rules against whatever is registered. The registry is a declaration only,
so it lives in core: apps of any layer register without importing alerting, and alerting imports nobody above
monitoring.

    register(MetricKind(
        name="endpoint_p95_ms", unit="ms", labels=("route", "method"),
        description="95th percentile response time of a route",
        read=read_endpoint_p95,
    ))

`read(tenant_id, window_s, now)` answers every label set the tenant has for that figure over the window that
ends at `now` (a timezone-aware datetime): a list of `(labels, value)`. One call serves every rule of the tenant
that names the kind, so evaluation costs a fixed number of reads per tenant, however many rules there are.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

Labels = dict[str, str]
Reading = tuple[Labels, float]
Reader = Callable[[int, int, datetime], list[Reading]]

UNITS = ("ms", "seconds", "fraction", "percent", "count", "per_s", "score")


@dataclass(frozen=True)
class MetricKind:
    name: str
    unit: str
    labels: tuple[str, ...]
    description: str
    read: Reader

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"metric kind {self.name!r}: unit {self.unit!r} is not one of {UNITS}")


_KINDS: dict[str, MetricKind] = {}


def register(kind: MetricKind) -> MetricKind:
    """Declare a kind; registering the same name twice replaces it (module reloads in tests)."""
    _KINDS[kind.name] = kind
    return kind


def get(name: str) -> MetricKind | None:
    return _KINDS.get(name)


def all_kinds() -> list[MetricKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.name)
