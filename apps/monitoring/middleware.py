"""Request metrics: first in MIDDLEWARE, so rate-limited, cached and refused responses are measured too.

Per request: a perf_counter pair, a database execute wrapper (count and time of queries), one dict
update in the recorder. The duration runs from this middleware's entry to the response leaving it.
"""
from __future__ import annotations

import time
from functools import lru_cache

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from apps.core import stats
from apps.monitoring import observers, recorder
from apps.monitoring.conf import monitoring_settings
from apps.monitoring.models import UNMATCHED_ROUTE

_perf = time.perf_counter
# Answered here, before tenant resolution: its bearer token is the metrics token, not an API token.
METRICS_PATH = "/metrics"


class _QueryTimer:
    __slots__ = ("ms", "count")

    def __init__(self) -> None:
        self.ms = 0.0
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        start = _perf()
        try:
            return execute(sql, params, many, context)
        finally:
            self.ms += (_perf() - start) * 1000
            self.count += 1


@lru_cache(maxsize=4096)
def _route_of_path(path: str) -> str:
    """For responses given before URL resolution (a 429, a refused tenant); bounded memo per path."""
    try:
        return resolve(path).route or UNMATCHED_ROUTE
    except Resolver404:
        return UNMATCHED_ROUTE


def route_of(request: HttpRequest) -> str:
    """The Django route pattern (`resolve().route`, e.g. `api/v1/me`), never the raw path."""
    match = request.resolver_match
    if match is not None:
        return match.route or UNMATCHED_ROUTE
    return _route_of_path(request.path_info)


class MonitoringMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.enabled = monitoring_settings.ENABLED
        self.server_timing = monitoring_settings.SERVER_TIMING
        if self.enabled:
            stats.pipeline.ensure_started()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        handler = self.get_response
        if request.path_info == METRICS_PATH:
            from apps.monitoring.api.views import metrics as handler
        if not self.enabled:
            return handler(request)
        watchers = observers.active
        if watchers:
            states = [watcher.begin(request) for watcher in watchers]
            cpu_start = time.thread_time()
        start = _perf()
        timer = _QueryTimer()
        # What `connection.execute_wrapper(timer)` does, without the context manager's cost per request.
        wrappers = connection.execute_wrappers
        wrappers.append(timer)
        try:
            response = handler(request)
        finally:
            wrappers.remove(timer)
        total_ms = (_perf() - start) * 1000
        response["X-Response-Time"] = f"{total_ms:.3f}ms"
        if self.server_timing:
            response["Server-Timing"] = (
                f"db;dur={timer.ms:.3f}, app;dur={total_ms - timer.ms:.3f}, total;dur={total_ms:.3f}"
            )
        tenant = getattr(request, "tenant", None)
        length = response.get("Content-Length")
        size = int(length) if length is not None else (0 if response.streaming else len(response.content))
        recorder.record(
            tenant.pk if tenant is not None else None, route_of(request), request.method, response.status_code,
            total_ms, timer.ms, timer.count, size,
        )
        if watchers:
            timing = observers.Timing(total_ms, (time.thread_time() - cpu_start) * 1000, timer.ms, timer.count)
            for watcher, state in zip(watchers, states, strict=True):
                watcher.end(request, response, state, timing)
        return response
