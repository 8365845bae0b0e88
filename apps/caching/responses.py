"""The response cache flow shared by the middleware and `@cache_policy`: look up, collapse, serve, store.

`before()` runs ahead of the view and answers a hit (fresh, stale-while-revalidate, or the leader's
response after waiting out a stampede); otherwise it leaves a plan on the request and `after()` stores the
view's response, or serves the stale copy when the view failed within the stale-if-error window.
"""
from __future__ import annotations

import contextvars
import copy
import hashlib
import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.utils.cache import cc_delim_re

from apps.caching import keys, stats
from apps.caching.backends import get_backend
from apps.caching.backends.base import LOCK_ACQUIRED, LOCK_FREE, CacheBackend
from apps.caching.compiled import CompiledPolicy
from apps.caching.conf import caching_settings
from apps.caching.entries import Entry, adaptive_ttl_s, etag_matches, etag_of
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.requests import is_anonymous
from apps.core.store import StoreGuard, StoreUnavailable
from apps.tenancy import tokens

log = logging.getLogger(__name__)

PLAN_ATTR = "_bulwark_cache_plan"
REFRESH_ATTR = "_bulwark_cache_refresh"
HEALTH_COMPONENT = "caching"
MAX_POLL_S = 0.1
# Headers that describe one delivery, not the stored representation.
_UNSTORED_HEADERS = {"set-cookie", "content-length", "date", "age", "cache-status", "x-request-id", "etag"}


def new_store_guard(clock: Clock = SYSTEM_CLOCK) -> StoreGuard:
    """The cache's outage guard: while the store is down, requests bypass the cache (one probe per interval)."""
    return StoreGuard(HEALTH_COMPONENT, clock=clock, description="cache store (bypassing the cache)",
                      aliases={"STORE_RETRY_INTERVAL_S": (caching_settings, "STORE_RETRY_S")})


def _in_thread(fn: Callable[[], None]) -> None:
    def run() -> None:
        try:
            fn()
        finally:
            connections.close_all()  # this thread's connections only

    threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True,
                     name="bulwark-cache-refresh").start()


@dataclass
class Plan:
    policy: CompiledPolicy
    key: str
    lock_key: str
    tag_keys: list[str]
    tag_versions: dict[str, int]
    token: str
    origin: Callable[[HttpRequest], HttpResponseBase]
    leader: bool = False
    # A lock on replacing one stored version is kept after the store (it expires by itself): a request
    # that read that version just before the store must not become a second leader once it is released.
    keep_lock_when_stored: bool = False
    stored: bool = False
    previous: Entry | None = None
    refresh: bool = False
    bypass: str = ""
    started: float = 0.0  # monotonic seconds when the origin call began


def tag_names(policy: CompiledPolicy, view_kwargs: dict) -> list[str]:
    """The implicit tenant and policy tags, then the policy's tags rendered from the URL kwargs."""
    names = [keys.TENANT_TAG, keys.policy_tag(policy.id)]
    values = {k: str(v) for k, v in view_kwargs.items()}
    for template in policy.tags:
        try:
            names.append(template.format_map(values))
        except (KeyError, IndexError, ValueError):
            # A kwarg the route does not have: the entry still carries the policy tag, so no stale read.
            continue
    return names


class ResponseCache:
    def __init__(self, *, backend: CacheBackend | None = None, clock: Clock = SYSTEM_CLOCK,
                 rand: random.Random | None = None, spawn: Callable[[Callable[[], None]], None] = _in_thread,
                 guard: StoreGuard | None = None) -> None:
        self._backend = backend
        self.clock = clock
        self.rand = rand or random.Random()
        self.spawn = spawn
        self.guard = guard or new_store_guard(clock)

    @property
    def backend(self) -> CacheBackend:
        return self._backend or get_backend()

    # -- before the view ------------------------------------------------------------------------------
    def plan_for(self, request: HttpRequest, policy: CompiledPolicy, view_kwargs: dict,
                 origin: Callable[[HttpRequest], HttpResponseBase]) -> Plan:
        actor = getattr(request, "actor", None)
        key = keys.response_key(
            tenant_id=policy.tenant_id, policy_id=policy.id, host=request.get_host(), path=request.path,
            query_string=request.META.get("QUERY_STRING", ""), ignored_query_params=policy.ignored_query_params,
            headers=request.headers, vary_headers=policy.vary_headers,
            principal=keys.principal_part(policy.vary_on, role=getattr(request, "role", None),
                                          actor_kind=getattr(actor, "kind", "anonymous"),
                                          actor_id=getattr(actor, "id", ""), anonymous=is_anonymous(request)),
        )
        names = tag_names(policy, view_kwargs)
        plan = Plan(policy=policy, key=key, lock_key=keys.lock_key(key),
                    tag_keys=[keys.tag_key(tenant_id=policy.tenant_id, tag=n) for n in names],
                    tag_versions={}, token=uuid.uuid4().hex, origin=origin)
        plan.started = self.clock.monotonic()
        setattr(request, PLAN_ATTR, plan)
        return plan

    def before(self, request: HttpRequest, policy: CompiledPolicy, view_kwargs: dict,
               origin: Callable[[HttpRequest], HttpResponseBase]) -> HttpResponseBase | None:
        if getattr(request, REFRESH_ATTR, False):
            return None
        plan = self.plan_for(request, policy, view_kwargs, origin)
        storing = request.method == "GET"
        found = self.guard.run(
            lambda: self.backend.lookup(key=plan.key, tag_keys=plan.tag_keys, lock_key=plan.lock_key,
                                        token=plan.token, lock_ttl_ms=caching_settings.LOCK_TTL_MS,
                                        lock_on_miss=storing),
            lambda: None,
        )
        if found is None:
            plan.bypass = "store-unavailable"
            return None
        plan.tag_versions = dict(zip(plan.tag_keys, found.tag_versions, strict=True))
        entry = self._valid(found.value, plan)
        now = self.clock.time()
        if entry is not None:
            if entry.is_fresh(now):
                if entry.wants_early_refresh(now, policy.early_refresh_beta, self.rand):
                    self._refresh_in_background(request, plan, entry)
                return self._hit(request, plan, entry, now, "hit")
            if entry.within_swr(now):
                self._refresh_in_background(request, plan, entry)
                return self._hit(request, plan, entry, now, "hit", stat="stale")
            if entry.within_stale_if_error(now):
                plan.previous = entry
        if not storing:
            return None
        lock = found.lock
        if lock != LOCK_ACQUIRED and found.value is not None:
            plan.lock_key = keys.lock_key(plan.key, replacing=hashlib.blake2b(found.value, digest_size=8).hexdigest())
            plan.keep_lock_when_stored = True
            lock = LOCK_ACQUIRED if self._try(lambda: self.backend.acquire(
                lock_key=plan.lock_key, token=plan.token, ttl_ms=caching_settings.LOCK_TTL_MS)) else lock
        if lock == LOCK_ACQUIRED:
            plan.leader = True
            return None
        return self._wait_for_leader(request, plan)

    def _try(self, call: Callable[[], object]) -> object:
        try:
            return call()
        except StoreUnavailable as exc:
            self.guard.failed(exc)
            return None

    def _valid(self, raw: bytes | None, plan: Plan) -> Entry | None:
        if raw is None:
            return None
        entry = Entry.decode(raw)
        # An entry stored before any of its tags was invalidated is dead, stale windows included.
        if entry is None or entry.tag_versions != plan.tag_versions:
            return None
        return entry

    def _wait_for_leader(self, request: HttpRequest, plan: Plan) -> HttpResponseBase | None:
        clock = self.clock
        deadline = clock.monotonic() + caching_settings.LOCK_WAIT_MS / 1000
        poll_s = caching_settings.LOCK_POLL_MS / 1000
        while clock.monotonic() < deadline:
            clock.sleep(poll_s)
            # Back off: hundreds of waiters polling at a fixed short interval would starve the leader's CPU.
            poll_s = min(poll_s * 1.5, MAX_POLL_S)
            try:
                found = self.backend.lookup(key=plan.key, tag_keys=plan.tag_keys, lock_key=plan.lock_key,
                                            token=plan.token, lock_ttl_ms=caching_settings.LOCK_TTL_MS,
                                            lock_on_miss=False)
            except StoreUnavailable as exc:
                self.guard.failed(exc)
                plan.bypass = "store-unavailable"
                return None
            entry = self._valid(found.value, plan)
            now = clock.time()
            if entry is not None and entry.is_fresh(now):
                return self._hit(request, plan, entry, now, "hit; collapsed")
            if found.lock == LOCK_FREE:
                # The leader finished without storing (an error or an uncacheable answer): go to the origin.
                return None
        if plan.previous is not None:
            return self._hit(request, plan, plan.previous, clock.time(), "hit; detail=lock-timeout", stat="stale")
        return None

    def _refresh_in_background(self, request: HttpRequest, plan: Plan, entry: Entry) -> None:
        refresh_lock = keys.refresh_lock_key(plan.key, entry.stored_at)
        if not self._try(lambda: self.backend.acquire(lock_key=refresh_lock, token=plan.token,
                                                       ttl_ms=caching_settings.LOCK_TTL_MS)):
            return
        clone = copy.copy(request)
        refresh_plan = copy.copy(plan)
        refresh_plan.lock_key, refresh_plan.leader, refresh_plan.previous, refresh_plan.refresh = (
            refresh_lock, True, entry, True)
        refresh_plan.keep_lock_when_stored = True
        setattr(clone, REFRESH_ATTR, True)
        setattr(clone, PLAN_ATTR, refresh_plan)

        def run() -> None:
            refresh_plan.started = self.clock.monotonic()
            try:
                self.after(clone, plan.origin(clone))
            except Exception:
                log.warning("background refresh of %s failed", plan.policy.name, exc_info=True)
                self._try(lambda: self.backend.release(lock_key=refresh_lock, token=plan.token))

        self.spawn(run)

    def _hit(self, request: HttpRequest, plan: Plan, entry: Entry, now: float, status: str,
             stat: str = "hits") -> HttpResponseBase:
        delattr(request, PLAN_ATTR)
        stats.record(plan.policy, **{stat: 1, "origin_calls_saved": 1, "bytes_served": len(entry.body)})
        return self.serve(request, entry, now, f"{status}; ttl={entry.ttl_left_s(now)}")

    def serve(self, request: HttpRequest, entry: Entry, now: float, cache_status: str) -> HttpResponseBase:
        if etag_matches(request.META.get("HTTP_IF_NONE_MATCH", ""), entry.etag):
            response: HttpResponseBase = HttpResponseNotModified()
            for name, value in entry.headers:
                if name.lower() in ("cache-control", "vary", "expires", "last-modified", "content-location"):
                    response[name] = value
        else:
            response = HttpResponse(entry.body, status=entry.status)
            for name, value in entry.headers:
                response[name] = value
        response["ETag"] = entry.etag
        response["Age"] = str(int(entry.age_s(now)))
        response["Cache-Status"] = f"Bulwark; {cache_status}"
        return response

    def fill(self, request: HttpRequest, policy: CompiledPolicy, view_kwargs: dict,
             origin: Callable[[HttpRequest], HttpResponseBase]) -> HttpResponseBase:
        """Call the origin and store its answer whatever is cached now (warming). Raises StoreUnavailable."""
        plan = self.plan_for(request, policy, view_kwargs, origin)
        plan.refresh = True
        plan.tag_versions = dict(zip(plan.tag_keys, self.backend.tag_versions(tag_keys=plan.tag_keys), strict=True))
        setattr(request, REFRESH_ATTR, True)
        return self.after(request, origin(request))

    # -- after the view -------------------------------------------------------------------------------
    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        plan: Plan | None = request.__dict__.pop(PLAN_ATTR, None)
        if plan is None:
            return response
        try:
            return self._after(request, plan, response)
        finally:
            if plan.leader and not (plan.keep_lock_when_stored and plan.stored):
                self._try(lambda: self.backend.release(lock_key=plan.lock_key, token=plan.token))

    def _after(self, request: HttpRequest, plan: Plan, response: HttpResponseBase) -> HttpResponseBase:
        if plan.bypass:
            response["Cache-Status"] = f"Bulwark; fwd=bypass; detail={plan.bypass}"
            return response
        now = self.clock.time()
        if response.status_code >= 500 and plan.previous is not None and plan.previous.within_stale_if_error(now):
            if plan.refresh:
                return response
            stats.record(plan.policy, stale=1, origin_calls_saved=0, bytes_served=len(plan.previous.body))
            return self.serve(request, plan.previous, now,
                              f"fwd=stale; fwd-status={response.status_code}; ttl={plan.previous.ttl_left_s(now)}")
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        reason = self.unstorable_reason(request, plan.policy, response)
        fwd = "stale" if plan.previous is not None else "miss"
        stats.record(plan.policy, **({"revalidations": 1} if plan.previous is not None else {"misses": 1}))
        if reason:
            response["Cache-Status"] = f"Bulwark; fwd={fwd}; detail=not-stored-{reason}"
            return response
        entry = self._entry_from(plan, response, now)
        try:
            self.backend.set(key=plan.key, value=entry.encode(), ttl_ms=entry.store_ttl_ms)
        except StoreUnavailable as exc:
            self.guard.failed(exc)
            response["Cache-Status"] = f"Bulwark; fwd={fwd}; detail=store-unavailable"
            return response
        plan.stored = True
        response["ETag"] = entry.etag
        response["Cache-Status"] = f"Bulwark; fwd={fwd}; stored; ttl={entry.ttl_s}"
        if not plan.refresh and etag_matches(request.META.get("HTTP_IF_NONE_MATCH", ""), entry.etag):
            return self.serve(request, entry, now, f"fwd={fwd}; stored; ttl={entry.ttl_s}")
        return response

    def _entry_from(self, plan: Plan, response: HttpResponseBase, now: float) -> Entry:
        policy, body = plan.policy, response.content
        etag = response.get("ETag") or etag_of(body)
        ttl_s = policy.ttl_s
        if policy.adaptive_ttl and plan.previous is not None:
            ttl_s = adaptive_ttl_s(previous_ttl_s=plan.previous.ttl_s, unchanged=plan.previous.etag == etag,
                                   ttl_min_s=policy.ttl_min_s, ttl_max_s=policy.ttl_max_s)
        return Entry(
            status=response.status_code,
            headers=[(k, v) for k, v in response.items() if k.lower() not in _UNSTORED_HEADERS],
            body=body, etag=etag, stored_at=now, ttl_s=ttl_s, swr_s=policy.swr_s, sie_s=policy.sie_s,
            tag_versions=plan.tag_versions, origin_ms=(self.clock.monotonic() - plan.started) * 1000,
        )

    @staticmethod
    def unstorable_reason(request: HttpRequest, policy: CompiledPolicy, response: HttpResponseBase) -> str:
        if request.method != "GET":
            return "method"
        if response.streaming:
            return "streaming"
        if response.status_code not in policy.statuses:
            return "status"
        if response.cookies:
            return "set-cookie"
        directives = {d.strip().split("=")[0].lower() for d in cc_delim_re.split(response.get("Cache-Control", ""))}
        if "no-store" in directives:
            return "no-store"
        if "private" in directives and policy.vary_on != "user":
            return "private"
        varied = {h.strip().lower() for h in cc_delim_re.split(response.get("Vary", "")) if h.strip()}
        if "*" in varied:
            return "vary-star"
        if varied - _covered_by_key(request, policy):
            # The view says its answer depends on a request header the key leaves out (Accept-Language,
            # Origin...): one copy would be served to requests it was not made for.
            return "vary"
        if len(response.content) > policy.max_body_bytes:
            return "too-large"
        if _names_a_credential(request, response.content):
            return "credential"
        return ""


MIN_CREDENTIAL_CHARS = 16


def _credentials_of(request: HttpRequest) -> list[bytes]:
    """The secrets the request authenticates with: the Authorization credentials (and a Bulwark token's
    secret part alone) and the session key. Short values are skipped: they would match by chance."""
    found = []
    credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[2].strip()
    parts = tokens.parse(credentials)
    for value in (credentials, parts.secret if parts else "",
                  request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")):
        if len(value) >= MIN_CREDENTIAL_CHARS:
            found.append(value.encode())
    return found


def _names_a_credential(request: HttpRequest, body: bytes) -> bool:
    """A body that echoes the asker's token or session key is never stored, whoever the policy would serve
    it to: a later bug in keying would hand out a credential. Bounded by `max_body_bytes`, checked first."""
    return any(secret in body for secret in _credentials_of(request))


def _covered_by_key(request: HttpRequest, policy: CompiledPolicy) -> set[str]:
    """Request headers whose effect the key already captures: Accept, the policy's headers, and the
    credentials of a signed-in principal (the policy chose with `vary_on` who shares a copy)."""
    covered = {"accept", *policy.vary_headers}
    if not is_anonymous(request):
        covered |= {"cookie", "authorization"}
    return covered


response_cache = ResponseCache()
