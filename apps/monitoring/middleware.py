"""Request metrics: first in MIDDLEWARE, so rate-limited, cached and refused responses are measured too.

Per request: two clock reads, one context variable set and reset, two headers, one dict update in the
recorder. The duration runs from this middleware's entry to the response leaving it. Query time and count
come from one execute wrapper installed once on every database connection (not one per request); it adds
to the current request's totals, found through a context variable, so it follows the request into the
thread where an async stack runs its sync view, and concurrent requests never mix.

Sync and async capable: under ASGI with an async stack below it, it adds no thread switch of its own.

Tenant: the request's tenant however it was resolved (API token, session; also by DRF's authentication
inside the view when the tenant middleware is not installed, since DRF sets it on this same request);
else, for an anonymous request, the core `ANONYMOUS_TENANT` (looked up at flush time, off the request
path); else none: platform traffic (a refused token, a signed-in user without a tenant).
"""
from __future__ import annotations

from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.db import connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse

from apps.core import stats
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.requests import is_anonymous, request_route
from apps.monitoring import observers as _observers
from apps.monitoring import recorder
from apps.monitoring.conf import monitoring_settings
from apps.monitoring.models import UNMATCHED_ROUTE

# Answered here, before tenant resolution: its bearer token is the metrics token, not an API token.
METRICS_PATH = "/metrics"


class QueryTotals:
    """Query time (ms) and count of one request."""

    __slots__ = ("ms", "count")

    def __init__(self) -> None:
        self.ms = 0.0
        self.count = 0


_current_queries: ContextVar[QueryTotals | None] = ContextVar("bulwark_monitoring_queries", default=None)


def _time_query(execute, sql, params, many, context):
    totals = _current_queries.get()
    if totals is None:  # outside a measured request (flusher, job, shell)
        return execute(sql, params, many, context)
    start = SYSTEM_CLOCK.monotonic()
    try:
        return execute(sql, params, many, context)
    finally:
        totals.ms += (SYSTEM_CLOCK.monotonic() - start) * 1000
        totals.count += 1


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
    sync_capable = True
    async_capable = True
    clock: Clock = SYSTEM_CLOCK

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self.enabled = monitoring_settings.ENABLED
        self.server_timing = monitoring_settings.SERVER_TIMING
        if self.enabled:
            install_query_timer()
            stats.pipeline.ensure_started()

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        handler = self.get_response
        if request.path_info == METRICS_PATH:
            from apps.monitoring.api.views import metrics as handler
        if not self.enabled:
            return handler(request)
        observers = _observers._observers  # the registered tuple itself: no call on the common path
        states = _observers.begin_all(observers, request) if observers else None
        clock, totals = self.clock, QueryTotals()
        cpu = clock.thread_time() if states is not None else 0.0
        token = _current_queries.set(totals)
        start = clock.monotonic()
        try:
            response = handler(request)
        finally:
            _current_queries.reset(token)
        self._finish(request, response, (clock.monotonic() - start) * 1000, totals, observers, states, cpu)
        return response

    async def __acall__(self, request: HttpRequest):
        handler = self.get_response
        if request.path_info == METRICS_PATH:
            from apps.monitoring.api.views import metrics

            handler = sync_to_async(metrics)
        if not self.enabled:
            return await handler(request)
        observers = _observers._observers
        states = _observers.begin_all(observers, request) if observers else None
        clock, totals = self.clock, QueryTotals()
        cpu = clock.thread_time() if states is not None else 0.0
        token = _current_queries.set(totals)
        start = clock.monotonic()
        try:
            response = await handler(request)
        finally:
            _current_queries.reset(token)
        self._finish(request, response, (clock.monotonic() - start) * 1000, totals, observers, states, cpu)
        return response

    def _finish(self, request: HttpRequest, response: HttpResponse, total_ms: float, totals: QueryTotals,
                observers: tuple, states: list | None, cpu: float) -> None:
        db_ms, queries = totals.ms, totals.count
        total = f"{total_ms:.3f}"
        _set_header(response, "x-response-time", "X-Response-Time", total + "ms")
        if self.server_timing:
            # Without a query the db time is exactly 0 and app time is the total: one float formatted, not three.
            _set_header(response, "server-timing", "Server-Timing",
                        f"db;dur={db_ms:.3f}, app;dur={total_ms - db_ms:.3f}, total;dur={total}" if queries
                        else f"db;dur=0.000, app;dur={total}, total;dur={total}")
        if response.streaming:
            length = response.get("Content-Length")
            size = int(length) if length is not None and length.isdigit() else 0
        else:
            size = len(response.content)
        # After the view Django has put the match on the request: read it there, not through another call.
        match = getattr(request, "resolver_match", None) or request_route(request)
        recorder.sink.record(tenant_key(request), match.route if match is not None else UNMATCHED_ROUTE,
                             request.method, response.status_code, total_ms, db_ms, queries, size,
                             now=self.clock.time())
        if states is not None:  # some observer watches this request
            timing = _observers.RequestTiming(wall_ms=total_ms, cpu_ms=(self.clock.thread_time() - cpu) * 1000,
                                              db_ms=db_ms, db_queries=queries)
            _observers.end_all(observers, states, request, response, timing)
