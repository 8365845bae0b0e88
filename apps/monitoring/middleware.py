"""Request metrics: first in MIDDLEWARE, so rate-limited, cached and refused responses are measured too.

Per request: two clock reads, two reads of this thread's query totals, two headers, one dict update in the
recorder. The duration runs from this middleware's entry to the response leaving it. Query time and count
come from one execute wrapper installed once on every database connection (not one per request): it adds
to per-thread totals, and a request's share is their difference across it.

Tenant: the request's tenant however it was resolved (API token, session; also by DRF's authentication
inside the view when the tenant middleware is not installed, since DRF sets it on this same request);
else, for an anonymous request, the core `ANONYMOUS_TENANT` (looked up at flush time, off the request
path); else none: platform traffic (a refused token, a signed-in user without a tenant).
"""
from __future__ import annotations

import threading

from django.db import connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse

from apps.core import stats
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.requests import is_anonymous, route_pattern
from apps.monitoring import observers as _observers
from apps.monitoring import recorder
from apps.monitoring.conf import monitoring_settings
from apps.monitoring.models import UNMATCHED_ROUTE

# Answered here, before tenant resolution: its bearer token is the metrics token, not an API token.
METRICS_PATH = "/metrics"


class _QueryTotals(threading.local):
    """Query time (ms) and count of this thread so far."""

    ms = 0.0
    count = 0


query_totals = _QueryTotals()


def _time_query(execute, sql, params, many, context):
    start = SYSTEM_CLOCK.monotonic()
    try:
        return execute(sql, params, many, context)
    finally:
        query_totals.ms += (SYSTEM_CLOCK.monotonic() - start) * 1000
        query_totals.count += 1


def _install_query_timer(*, connection, **kwargs) -> None:
    if _time_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_time_query)


def install_query_timer() -> None:
    """Time every query of this process: connections opened from now on, and those already open here."""
    connection_created.connect(_install_query_timer, dispatch_uid="bulwark-monitoring-query-timer")
    for connection in connections.all(initialized_only=True):
        _install_query_timer(connection=connection)


def tenant_key(request: HttpRequest) -> int | str | None:
    """The recorder's tenant key: the tenant's id, `recorder.ANONYMOUS` or None (platform traffic)."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        return tenant.pk
    return recorder.ANONYMOUS if is_anonymous(request) else None


def _set_header(response: HttpResponse, lower: str, name: str, value: str) -> None:
    # Django's header setter checks the charset of name and value (0.8 µs each, a sixth of this middleware's
    # cost); ours are ASCII names and numbers formatted here, so they go straight into the header store.
    response.headers._store[lower] = (name, value)


class MonitoringMiddleware:
    clock: Clock = SYSTEM_CLOCK

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.enabled = monitoring_settings.ENABLED
        self.server_timing = monitoring_settings.SERVER_TIMING
        if self.enabled:
            install_query_timer()
            stats.pipeline.ensure_started()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        handler = self.get_response
        if request.path_info == METRICS_PATH:
            from apps.monitoring.api.views import metrics as handler
        if not self.enabled:
            return handler(request)
        observers = _observers.request_observers()
        if observers:
            return self._observed(request, handler, observers)
        monotonic, totals = self.clock.monotonic, query_totals
        db_ms, queries = totals.ms, totals.count
        start = monotonic()
        response = handler(request)
        total_ms = (monotonic() - start) * 1000
        self._finish(request, response, total_ms, totals.ms - db_ms, totals.count - queries)
        return response

    def _observed(self, request: HttpRequest, handler, observers) -> HttpResponse:
        clock, totals = self.clock, query_totals
        states = _observers.begin_all(observers, request)
        db_ms, queries = totals.ms, totals.count
        cpu = clock.thread_time()
        start = clock.monotonic()
        response = handler(request)
        total_ms = (clock.monotonic() - start) * 1000
        timing = _observers.RequestTiming(wall_ms=total_ms, cpu_ms=(clock.thread_time() - cpu) * 1000,
                                          db_ms=totals.ms - db_ms, db_queries=totals.count - queries)
        self._finish(request, response, total_ms, timing.db_ms, timing.db_queries)
        _observers.end_all(observers, states, request, response, timing)
        return response

    def _finish(self, request: HttpRequest, response: HttpResponse, total_ms: float, db_ms: float,
                queries: int) -> None:
        _set_header(response, "x-response-time", "X-Response-Time", f"{total_ms:.3f}ms")
        if self.server_timing:
            _set_header(response, "server-timing", "Server-Timing",
                        f"db;dur={db_ms:.3f}, app;dur={total_ms - db_ms:.3f}, total;dur={total_ms:.3f}")
        if response.streaming:
            length = response.get("Content-Length")
            size = int(length) if length is not None and length.isdigit() else 0
        else:
            size = len(response.content)
        recorder.sink.record(tenant_key(request), route_pattern(request) or UNMATCHED_ROUTE, request.method,
                             response.status_code, total_ms, db_ms, queries, size, now=self.clock.time())
