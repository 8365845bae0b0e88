"""Evidence collection: a request observer of monitoring's middleware that samples requests per route.

A sampled request gets an execute wrapper (SQL fingerprints: count, distinct parameters, identical repeats,
time, rows), its outgoing httpx calls recorded (host, time, timeout, outcome), its thread watched by a
low-rate stack sampler, and its response measured (size, list length, body hash, cache status). A request
not sampled costs one random draw and one dict lookup. Samples are buffered per process and written in
one batch by the core stats pipeline (every `CORE.STATS_FLUSH_INTERVAL_S`), so a finished request is
visible to the analysis within that interval.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection

from apps.core import stats
from apps.core.requests import anonymous_tenant, is_anonymous, route_pattern
from apps.monitoring.models import UNMATCHED_ROUTE
from apps.optimization.conf import optimization_settings
from apps.optimization.fingerprint import fingerprint, has_limit, is_select

SINK_NAME = "optimization.samples"
MAX_PARAM_SETS = 64
_perf = time.perf_counter
_current: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar("bulwark_optimization", default=None)
# The breaker a call goes through (Bulwark's breaker transport sets it around its inner transport): a host's
# default breaker (named after the host) has no policy row, so only the call itself tells it is protected.
_breaker: contextvars.ContextVar[str | None] = contextvars.ContextVar("bulwark_optimization_breaker", default=None)


def _jsonable_params(params: Any) -> list | None:
    """Parameters kept for EXPLAIN: scalars only (a datetime as ISO text, which PostgreSQL casts)."""
    if not isinstance(params, list | tuple):
        return None
    kept = []
    for value in params:
        if value is None or isinstance(value, bool | int | float | str):
            kept.append(value if not isinstance(value, str) else value[:500])
        elif hasattr(value, "isoformat"):
            kept.append(value.isoformat())
        else:
            return None
    return kept


class Query:
    __slots__ = ("sql", "n", "param_sets", "ms", "rows", "params")

    def __init__(self, sql: str, params: Any) -> None:
        self.sql = sql
        self.n = 0
        self.param_sets: Counter = Counter()
        self.ms = 0.0
        self.rows = 0
        self.params = _jsonable_params(params)

    def as_dict(self, fp: str) -> dict:
        return {"fp": fp, "sql": self.sql[:2000], "n": self.n, "distinct": len(self.param_sets),
                "identical": max(self.param_sets.values(), default=0), "ms": round(self.ms, 3), "rows": self.rows,
                "limit": has_limit(self.sql), "params": self.params}


class RequestState:
    __slots__ = ("queries", "calls", "frames", "thread_id", "token", "route", "started", "wrappers")

    def __init__(self, route: str) -> None:
        self.queries: dict[str, Query] = {}
        self.calls: list[dict] = []
        self.frames: Counter = Counter()
        self.thread_id = threading.get_ident()
        self.token = None
        self.route = route
        self.started = _perf()
        self.wrappers: list | None = None  # the execute wrappers of the connection it was added to

    def __call__(self, execute, sql, params, many, context):
        start = _perf()
        try:
            return execute(sql, params, many, context)
        finally:
            ms = (_perf() - start) * 1000
            fp = fingerprint(sql)
            query = self.queries.get(fp)
            if query is None:
                query = self.queries[fp] = Query(sql, params)
            query.n += 1
            query.ms += ms
            if not many:
                key = hash(repr(params))
                if key in query.param_sets or len(query.param_sets) < MAX_PARAM_SETS:
                    query.param_sets[key] += 1
            if not many and is_select(sql):
                rowcount = getattr(context.get("cursor"), "rowcount", -1)
                if isinstance(rowcount, int) and rowcount > 0:
                    query.rows += rowcount


class StackSampler:
    """One daemon thread per process that, while sampled requests run, reads their threads' stacks every
    STACK_SAMPLE_INTERVAL_MS and counts the innermost function of the project's own code.

    The thread keeps ticking while requests come (it blocks only after IDLE_S without a watched request), so
    watching a request is a dict insert: waking a blocked thread for every request cost a thread switch each
    (~0.3 ms of a 3 ms request, most of the collector's overhead). A request is read only once it has run
    for one interval: the question is where CPU-bound requests (tens of ms) spend it, and reading every
    thread's stack for requests of a millisecond or two was most of what remained of the sampler's cost."""

    IDLE_S = 2.0

    def __init__(self) -> None:
        # Single dict operations (and list() of its items) are atomic under the GIL: no lock on the request path.
        self._watched: dict[int, RequestState] = {}
        self._wake = threading.Event()
        self._idle = True
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._root = str(getattr(settings, "BASE_DIR", ""))
        if hasattr(os, "register_at_fork"):  # a forked child has no sampler thread: start its own
            os.register_at_fork(after_in_child=self._forget_thread)

    def _forget_thread(self) -> None:
        self._thread, self._idle, self._watched = None, True, {}
        self._wake = threading.Event()
        self._start_lock = threading.Lock()

    def watch(self, state: RequestState) -> None:
        self._watched[state.thread_id] = state
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="bulwark-stack-sampler", daemon=True)
                    self._thread.start()
        if self._idle:  # read after the insert: the thread sets it before its last look at _watched
            self._wake.set()

    def unwatch(self, state: RequestState) -> None:
        self._watched.pop(state.thread_id, None)

    def _own_code(self, filename: str) -> bool:
        return (filename.startswith(self._root) and "site-packages" not in filename
                and "/apps/optimization/" not in filename and "/apps/monitoring/" not in filename)

    def _run(self) -> None:
        quiet_since = time.monotonic()
        while True:
            if not self._watched and time.monotonic() - quiet_since >= self.IDLE_S:
                self._idle = True
                self._wake.clear()
                if not self._watched:
                    self._wake.wait()
                self._idle = False
            interval = float(optimization_settings.STACK_SAMPLE_INTERVAL_MS) / 1000
            time.sleep(interval)
            watched = list(self._watched.items())
            if not watched:
                continue
            quiet_since = time.monotonic()
            now = _perf()
            due = [(thread_id, state.frames) for thread_id, state in watched if now - state.started >= interval]
            if not due:
                continue
            frames = sys._current_frames()
            for thread_id, counter in due:
                frame = frames.get(thread_id)
                while frame is not None and not self._own_code(frame.f_code.co_filename):
                    frame = frame.f_back
                if frame is not None:
                    code = frame.f_code
                    counter[f"{frame.f_globals.get('__name__', '?')}.{code.co_qualname}"] += 1
                else:
                    counter["<library>"] += 1


class SampleSink(stats.BufferedSink):
    """Finished samples in a list; written as RequestSample rows in one INSERT per flush."""

    def __init__(self) -> None:
        self._pending: list[dict] = []
        self._lock = threading.Lock()

    def add(self, sample: dict) -> None:
        with self._lock:
            self._pending.append(sample)

    def take(self) -> list[dict]:
        with self._lock:
            batch, self._pending = self._pending, []
        return batch

    def restore(self, batch: list[dict]) -> None:
        with self._lock:
            self._pending[:0] = batch

    def write(self, batch: list[dict], now: float) -> None:
        from apps.optimization.models import RequestSample

        if connection.vendor != "postgresql":
            RequestSample.objects.bulk_create([RequestSample(**sample) for sample in batch])
            return
        # One JSON document expanded by the server: building a model instance per sample, with its JSON fields
        # encoded one by one, cost more of this process's CPU than the sampled requests' own collection.
        with connection.cursor() as cursor:
            cursor.execute(_insert_sql(RequestSample._meta.db_table),
                           [json.dumps(batch, default=_iso, separators=(",", ":"))])


# The columns a sample fills and their types in jsonb_to_recordset (RequestSample's fields, id excluded).
_SAMPLE_COLUMNS = (
    ("tenant_id", "bigint"), ("taken_at", "timestamptz"), ("route", "text"), ("method", "text"), ("status", "integer"),
    ("wall_ms", "double precision"), ("cpu_ms", "double precision"), ("db_ms", "double precision"),
    ("db_queries", "integer"), ("size", "integer"), ("list_len", "integer"), ("body_hash", "text"),
    ("cache_status", "text"), ("queries", "jsonb"), ("calls", "jsonb"), ("frames", "jsonb"),
)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{value!r} is not JSON serialisable")


def _insert_sql(table: str) -> str:
    names = ", ".join(f'"{name}"' for name, _ in _SAMPLE_COLUMNS)
    typed = ", ".join(f'"{name}" {kind}' for name, kind in _SAMPLE_COLUMNS)
    return f'INSERT INTO "{table}" ({names}) SELECT {names} FROM jsonb_to_recordset(%s::jsonb) AS r({typed})'


def _body_shape(response) -> tuple[int | None, str]:
    if response.streaming:
        return None, ""
    content = response.content
    if len(content) > optimization_settings.BODY_INSPECT_MAX_BYTES:
        return None, ""
    digest = hashlib.blake2b(content, digest_size=8).hexdigest()
    if "json" not in response.get("Content-Type", "") or b"[" not in content:
        return None, digest  # not JSON, or JSON without a list: nothing to measure, no need to parse it
    try:
        body = json.loads(content)
    except ValueError:
        return None, digest
    if isinstance(body, list):
        return len(body), digest
    if isinstance(body, dict):
        lists = [len(v) for v in body.values() if isinstance(v, list)]
        return (max(lists) if lists else None), digest
    return None, digest


_anonymous_ids: dict[str, int | None] = {}


def _anonymous_tenant_id(request) -> int | None:
    """Anonymous traffic belongs to the configured anonymous tenant; without one it is platform traffic."""
    slug = anonymous_tenant()
    if not slug or not is_anonymous(request):
        return None
    if slug not in _anonymous_ids:
        from apps.tenancy.models import Tenant

        _anonymous_ids[slug] = Tenant.objects.filter(slug=slug).values_list("pk", flat=True).first()
    return _anonymous_ids[slug]


class Collector:
    """The request observer (see apps.monitoring.observers)."""

    def __init__(self, *, sink: SampleSink, sampler: StackSampler, rng: random.Random | None = None) -> None:
        self.sink = sink
        self.sampler = sampler
        self.rng = rng or random.Random()
        self._budget: dict[tuple[str, str, int], int] = {}
        self._minute = 0

    def _admit(self, route: str, method: str) -> bool:
        rate = optimization_settings.SAMPLE_RATE
        if rate < 1 and self.rng.random() >= rate:
            return False
        minute = int(time.time() // 60)
        if minute != self._minute:
            self._minute, self._budget = minute, {}
        key = (route, method, minute)
        used = self._budget.get(key, 0)
        if used >= optimization_settings.MAX_SAMPLES_PER_ROUTE_MINUTE:
            return False
        self._budget[key] = used + 1
        return True

    def begin(self, request) -> RequestState | None:
        route = (route_pattern(request) or UNMATCHED_ROUTE)
        if not self._admit(route, request.method):
            return None
        state = RequestState(route)
        wrappers = state.wrappers = connection.execute_wrappers
        # A request that raised through the middleware never reached `end`: drop its stale wrapper.
        if wrappers:
            wrappers[:] = [w for w in wrappers if not isinstance(w, RequestState)]
        wrappers.append(state)
        state.token = _current.set(state)
        self.sampler.watch(state)
        return state

    def end(self, request, response, state: RequestState | None, timing) -> None:
        if state is None:
            return
        self.sampler.unwatch(state)
        with contextlib.suppress(ValueError):
            state.wrappers.remove(state)
        # Ended in another context (an ASGI thread hand-over): there is nothing to restore.
        with contextlib.suppress(ValueError):
            _current.reset(state.token)
        list_len, body_hash = _body_shape(response)
        tenant = getattr(request, "tenant", None)
        self.sink.add({
            "tenant_id": tenant.pk if tenant is not None else _anonymous_tenant_id(request),
            "taken_at": datetime.now(tz=UTC),
            "route": (route_pattern(request) or UNMATCHED_ROUTE)[:255],
            "method": (request.method or "")[:10],
            "status": response.status_code,
            "wall_ms": round(timing.wall_ms, 3), "cpu_ms": round(timing.cpu_ms, 3),
            "db_ms": round(timing.db_ms, 3), "db_queries": timing.db_queries,
            "size": len(response.content) if not response.streaming else 0,
            "list_len": list_len, "body_hash": body_hash,
            "cache_status": response.get("Cache-Status", "")[:100],
            "queries": [q.as_dict(fp) for fp, q in state.queries.items()][:100],
            "calls": state.calls[:50],
            "frames": [[name, n] for name, n in state.frames.most_common(5)],
        })


# -- outgoing HTTP calls (httpx, whichever transport wraps it: Bulwark's breaker transport sets its timeout
#    on the request before the inner transport sees it) -------------------------------------------------
def _timeout_of(request) -> float | None:
    timeouts = [v for v in (request.extensions.get("timeout") or {}).values() if v is not None]
    return max(timeouts) if timeouts else None


def _record_call(state: RequestState, request, start: float, status: int | None, error: str) -> None:
    if len(state.calls) < 50:
        state.calls.append({"host": request.url.host, "ms": round((_perf() - start) * 1000, 3),
                            "timeout_s": _timeout_of(request), "status": status, "error": error,
                            "breaker": _breaker.get()})


def _wrap_sync(original):
    def handle_request(self, request):
        state = _current.get()
        if state is None:
            return original(self, request)
        start = _perf()
        try:
            response = original(self, request)
        except Exception as exc:
            _record_call(state, request, start, None, exc.__class__.__name__)
            raise
        _record_call(state, request, start, response.status_code, "")
        return response

    handle_request.bulwark_wrapped = True
    return handle_request


def _wrap_async(original):
    async def handle_async_request(self, request):
        state = _current.get()
        if state is None:
            return await original(self, request)
        start = _perf()
        try:
            response = await original(self, request)
        except Exception as exc:
            _record_call(state, request, start, None, exc.__class__.__name__)
            raise
        _record_call(state, request, start, response.status_code, "")
        return response

    handle_async_request.bulwark_wrapped = True
    return handle_async_request


def _wrap_breaker_sync(original):
    def handle_request(self, request):
        token = _breaker.set(self.name_for(request))
        try:
            return original(self, request)
        finally:
            _breaker.reset(token)

    handle_request.bulwark_wrapped = True
    return handle_request


def _wrap_breaker_async(original):
    async def handle_async_request(self, request):
        token = _breaker.set(self.name_for(request))
        try:
            return await original(self, request)
        finally:
            _breaker.reset(token)

    handle_async_request.bulwark_wrapped = True
    return handle_async_request


def instrument_httpx() -> None:
    import httpx

    from apps.resilience.httpx import AsyncBreakerTransport, BreakerTransport

    if not getattr(BreakerTransport.handle_request, "bulwark_wrapped", False):
        BreakerTransport.handle_request = _wrap_breaker_sync(BreakerTransport.handle_request)
    if not getattr(AsyncBreakerTransport.handle_async_request, "bulwark_wrapped", False):
        AsyncBreakerTransport.handle_async_request = _wrap_breaker_async(AsyncBreakerTransport.handle_async_request)
    if not getattr(httpx.HTTPTransport.handle_request, "bulwark_wrapped", False):
        httpx.HTTPTransport.handle_request = _wrap_sync(httpx.HTTPTransport.handle_request)
    if not getattr(httpx.AsyncHTTPTransport.handle_async_request, "bulwark_wrapped", False):
        httpx.AsyncHTTPTransport.handle_async_request = _wrap_async(httpx.AsyncHTTPTransport.handle_async_request)


sink = SampleSink()
collector = Collector(sink=sink, sampler=StackSampler())


def install() -> None:
    from apps.monitoring.observers import register_request_observer

    stats.register(SINK_NAME, sink, start=False)
    instrument_httpx()
    register_request_observer(collector)
