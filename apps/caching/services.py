"""Every write and decision of the caching app: policies, invalidation, application-data caching, warming.

The policy snapshots follow `CachePolicy` by themselves (`snapshot.py`); counting is in `stats.py`."""
from __future__ import annotations

import io
import logging
import pickle
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.db import models, transaction
from django.urls import Resolver404, resolve

from apps.audit.services import record
from apps.caching import keys
from apps.caching.backends import get_backend
from apps.caching.backends.base import LOCK_ACQUIRED, LOCK_FREE
from apps.caching.compiled import compile_policy
from apps.caching.conf import caching_settings
from apps.caching.models import CachePolicy
from apps.caching.responses import response_cache
from apps.caching.snapshot import WATCHES_KEY, watch_snapshot
from apps.core import context
from apps.core.context import Actor
from apps.core.errors import ApplicationError
from apps.core.services import integrity_as_field_error, model_create, model_update
from apps.core.store import StoreUnavailable
from apps.tenancy.models import Tenant
from apps.tenancy.roles import Role

log = logging.getLogger(__name__)

POLICY_FIELDS = (
    "name", "route_name", "path_pattern", "methods", "ttl_s", "vary_on", "vary_headers", "ignored_query_params",
    "stale_while_revalidate_s", "stale_if_error_s", "tags", "cacheable_statuses", "max_body_bytes",
    "adaptive_ttl", "ttl_min_s", "ttl_max_s", "early_refresh_beta", "invalidate_on_models", "warm_urls", "enabled",
)


class StoreUnavailableError(ApplicationError):
    status = 503
    code = "cache_store_unavailable"


# -- policies ---------------------------------------------------------------------------------------------
def retire_policy_entries(sender: type[CachePolicy], instance: CachePolicy, **kwargs: Any) -> None:
    """post_save / post_delete of a policy, from any door: retire the policy's entries after commit, whose
    rules may have changed (the snapshots recompile by themselves: they follow the model)."""
    if kwargs.get("raw"):
        return
    tenant_id, policy_id = instance.tenant_id, instance.pk
    transaction.on_commit(lambda: _bump(tenant_id=tenant_id, tags=[keys.policy_tag(policy_id)], strict=False))


@transaction.atomic
def policy_create(*, tenant: Tenant, data: dict[str, Any]) -> CachePolicy:
    with integrity_as_field_error(field="name", message="A cache policy with this name already exists."):
        return model_create(model=CachePolicy, data=data, tenant=tenant)


@transaction.atomic
def policy_update(*, policy: CachePolicy, data: dict[str, Any]) -> CachePolicy:
    with integrity_as_field_error(field="name", message="A cache policy with this name already exists."):
        return model_update(instance=policy, data=data)


@transaction.atomic
def policy_save(*, policy: CachePolicy) -> CachePolicy:
    """Save a policy edited in place (the admin's form); validated like every other door."""
    policy.full_clean()
    policy.save()
    return policy


@transaction.atomic
def policy_delete(*, policy: CachePolicy) -> None:
    policy.delete()


# -- invalidation -----------------------------------------------------------------------------------------
def _bump(*, tenant_id: int | None, tags: Iterable[str], strict: bool) -> None:
    tag_keys = [keys.tag_key(tenant_id=tenant_id, tag=tag) for tag in tags]
    guard = response_cache.guard
    try:  # always tried, even while requests bypass the store: an invalidation must not be skipped
        get_backend().bump_tags(tag_keys=tag_keys, ttl_s=caching_settings.TAG_VERSION_TTL_S)
    except StoreUnavailable as exc:
        guard.failed(exc)
        if strict:
            raise StoreUnavailableError("The cache store is unreachable; nothing was invalidated.") from exc
        log.warning("could not invalidate %s of tenant %s", tag_keys, tenant_id)
    else:
        guard.succeeded()


def invalidate(*, tags: Iterable[str], tenant: Tenant | int | None = None) -> None:
    """Invalidate tags of a tenant (default: the bound request's) in every process, at once.

    Inside a transaction the tags are bumped now and again on commit, so no request can cache the old
    data between this call and the commit. Raises StoreUnavailableError when the store is down.
    """
    tenant = tenant if tenant is not None else context.current().tenant
    tenant_id = tenant.pk if isinstance(tenant, Tenant) else tenant
    tags = list(tags)
    _bump(tenant_id=tenant_id, tags=tags, strict=True)
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _bump(tenant_id=tenant_id, tags=tags, strict=False))


@transaction.atomic
def cache_invalidate(
    *, tenant: Tenant, tags: list[str] | None = None, policy: CachePolicy | None = None,
    everything: bool = False, actor: Actor | None = None,
) -> dict[str, Any]:
    """The operator's invalidation (API, admin): by tags, by policy, or the tenant's whole cache; audited."""
    if policy is not None and policy.tenant_id != tenant.pk:
        raise ApplicationError("Unknown policy.", code="not_found", status=404)
    chosen = [bool(tags), policy is not None, everything]
    if sum(chosen) != 1:
        raise ApplicationError("Give exactly one of tags, policy or all.",
                               extra={"errors": {"non_field_errors": ["Give exactly one of tags, policy or all."]}})
    if everything:
        names, scope = [keys.TENANT_TAG], {"all": True}
    elif policy is not None:
        names, scope = [keys.policy_tag(policy.pk)], {"policy": policy.name}
    else:
        names, scope = list(tags or []), {"tags": list(tags or [])}
    invalidate(tags=names, tenant=tenant)
    record(action="cache.invalidate", obj=policy, tenant=tenant, changes=scope, actor=actor,
           object_type="" if policy else "bulwark_caching.cache", object_repr="" if policy else "cache")
    return scope


def on_model_change(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """post_save / post_delete of any model: invalidate the policies that watch it, once committed.

    The watched models come from an in-process snapshot, so a save of an unwatched model costs a dict
    lookup and registers nothing.
    """
    if kwargs.get("raw") or sender._meta.app_label in _UNWATCHED_APPS:
        return
    watches = watch_snapshot.get(WATCHES_KEY).get(sender._meta.label_lower)
    if not watches:
        return
    # Read now: after a delete Django clears the primary key before on_commit runs.
    values = {f.attname: getattr(instance, f.attname, None) for f in sender._meta.concrete_fields}
    values["pk"] = instance.pk
    transaction.on_commit(lambda: _invalidate_watchers(watches=watches, values=values))


_UNWATCHED_APPS = {"bulwark_audit", "bulwark_caching", "sessions", "contenttypes", "django_q", "admin"}


def _invalidate_watchers(*, watches: list[tuple[int, int, tuple[str, ...]]], values: dict[str, Any]) -> None:
    owner = values.get("tenant_id")
    rendered = {k: str(v) for k, v in values.items()}
    for tenant_id, policy_id, templates in watches:
        if owner is not None and owner != tenant_id:
            continue
        tags = []
        for template in templates:
            try:
                tags.append(template.format_map(rendered))
            except (KeyError, IndexError, ValueError):
                tags.append(keys.policy_tag(policy_id))
        _bump(tenant_id=tenant_id, tags=tags or [keys.policy_tag(policy_id)], strict=False)


# -- application data -------------------------------------------------------------------------------------
def get_or_set(key: str, fn: Callable[[], Any], ttl_s: int, tags: Iterable[str] = (),
               *, tenant: Tenant | int | None = None) -> Any:
    """`fn()` cached under `key` for `ttl_s`, tagged; concurrent misses across processes call `fn` once.

    The tenant (default: the bound request's) is part of the key. With the store down, `fn()` is called.
    """
    tenant = tenant if tenant is not None else context.current().tenant
    tenant_id = tenant.pk if isinstance(tenant, Tenant) else tenant
    backend, guard, clock = get_backend(), response_cache.guard, response_cache.clock
    if not guard.available():
        return fn()
    entry_key = keys.data_key(tenant_id=tenant_id, key=key)
    tag_keys = [keys.tag_key(tenant_id=tenant_id, tag=t) for t in (keys.TENANT_TAG, *tags)]
    lock_key, token = keys.lock_key(entry_key), uuid.uuid4().hex
    deadline = clock.monotonic() + caching_settings.LOCK_WAIT_MS / 1000
    try:
        found = backend.lookup(key=entry_key, tag_keys=tag_keys, lock_key=lock_key, token=token,
                               lock_ttl_ms=caching_settings.LOCK_TTL_MS, lock_on_miss=True)
        while True:
            if found.value is not None:
                versions, value = pickle.loads(found.value)
                if tuple(versions) == found.tag_versions:
                    return value
                if found.lock != LOCK_ACQUIRED and backend.acquire(
                        lock_key=lock_key, token=token, ttl_ms=caching_settings.LOCK_TTL_MS):
                    found = type(found)(value=None, lock=LOCK_ACQUIRED, tag_versions=found.tag_versions)
            if found.lock == LOCK_ACQUIRED:
                try:
                    value = fn()
                except BaseException:
                    _quietly(partial(backend.release, lock_key=lock_key, token=token))
                    raise
                # The value is computed: a store failure from here on must not call fn a second time.
                _quietly(partial(backend.set, key=entry_key, value=pickle.dumps((found.tag_versions, value)),
                                 ttl_ms=ttl_s * 1000))
                _quietly(partial(backend.release, lock_key=lock_key, token=token))
                return value
            if found.lock == LOCK_FREE or clock.monotonic() >= deadline:
                return fn()
            clock.sleep(caching_settings.LOCK_POLL_MS / 1000)
            found = backend.lookup(key=entry_key, tag_keys=tag_keys, lock_key=lock_key, token=token,
                                   lock_ttl_ms=caching_settings.LOCK_TTL_MS, lock_on_miss=True)
    except StoreUnavailable as exc:
        guard.failed(exc)
        return fn()


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except StoreUnavailable as exc:
        response_cache.guard.failed(exc)


# -- warming ----------------------------------------------------------------------------------------------
def _warm_request(*, tenant: Tenant, url: str, anonymous: bool = False) -> WSGIRequest:
    from apps.tenancy.selectors import ResolvedToken

    parts = urlsplit(urljoin(caching_settings.WARM_BASE_URL, url))
    request = WSGIRequest({
        "REQUEST_METHOD": "GET", "PATH_INFO": parts.path, "QUERY_STRING": parts.query, "SCRIPT_NAME": "",
        "SERVER_NAME": parts.hostname or "localhost", "SERVER_PORT": str(parts.port or 80),
        "HTTP_HOST": parts.netloc, "HTTP_ACCEPT": caching_settings.WARM_ACCEPT,
        "wsgi.url_scheme": parts.scheme, "wsgi.input": io.BytesIO(),
    })
    request.user = AnonymousUser()
    if anonymous:
        # An "anonymous" policy's copy is the one anonymous visitors share: warm it as one of them.
        request.tenant, request.role, request.api_token, request.actor = None, None, None, context.ANONYMOUS
        return request
    # Warming runs as a read-only system principal of the tenant: it fills the tenant's and viewers' copies.
    token = ResolvedToken(id=0, name="cache-warm", prefix="warm", secret_hash="", role=Role.VIEWER, tenant=tenant,
                          expires_at=None, revoked=False, last_used_at=None)
    request.tenant, request.role, request.api_token = tenant, Role.VIEWER, token
    request.actor = Actor.system("cache-warm", id="cache-warm")
    request._dont_enforce_csrf_checks = True
    return request


def warm_policy(*, policy: CachePolicy, progress: Callable[[int, str], None] | None = None) -> dict[str, Any]:
    """Fetch each warm URL of the policy through its view and store the answers; progress(percent, message)."""
    report = progress or (lambda percent, message: None)
    compiled = compile_policy(policy)
    result: dict[str, Any] = {"policy": policy.name, "warmed": 0, "failed": []}
    if policy.vary_on == "user":
        result["skipped"] = "Per-user copies cannot be warmed ahead of the users."
        report(100, result["skipped"])
        return result
    urls = list(policy.warm_urls)
    for index, url in enumerate(urls, start=1):
        request = _warm_request(tenant=policy.tenant, url=url, anonymous=policy.vary_on == "anonymous")
        try:
            request.get_host()  # the host is part of the key; one not in ALLOWED_HOSTS must not end the job
            match = resolve(request.path_info)
        except DisallowedHost:
            result["failed"].append({"url": url, "error": "host not in ALLOWED_HOSTS"})
            continue
        except Resolver404:
            result["failed"].append({"url": url, "error": "no such route"})
            continue
        request.resolver_match = match
        try:
            response = response_cache.fill(request, compiled, match.kwargs,
                                           lambda r, m=match: m.func(r, *m.args, **m.kwargs))
        except StoreUnavailable as exc:
            raise StoreUnavailableError("The cache store is unreachable; nothing was warmed.") from exc
        stored = "stored" in response.get("Cache-Status", "").split("; ")
        if stored:
            result["warmed"] += 1
        else:
            result["failed"].append({"url": url, "status": response.status_code,
                                     "cache_status": response.get("Cache-Status", "")})
        report(int(index * 100 / len(urls)), f"{index}/{len(urls)} {url}: {'stored' if stored else 'not stored'}")
    if not urls:
        report(100, "no warm URLs")
    return result


@transaction.atomic
def cache_warm_submit(*, policy: CachePolicy, actor: Actor | None = None) -> Any:
    """Queue the `cache.warm` job of a policy (operator action, audited); returns the JobRun."""
    from apps.jobs.services import job_submit

    if not policy.warm_urls:
        raise ApplicationError("This policy has no warm URLs.", extra={"errors": {"policy": ["No warm URLs."]}})
    run = job_submit(job_type="cache.warm", params={"policy": policy.pk}, tenant=policy.tenant, submitted_by=actor)
    record(action="cache.warm", obj=policy, actor=actor, changes={"urls": list(policy.warm_urls), "job": run.pk})
    return run
