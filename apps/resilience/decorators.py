"""The Python door: `@breaker`, `with breaker(...)`, their async forms, and `resilient_call` (retry, timeout, fallback).

The tenant is the one bound to the request context unless given, so a view's calls are judged by its
tenant's policies; a dependency without a policy gets the defaults of `BreakerConfig`.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.cache import cache

from apps.core import context
from apps.core.clock import Clock
from apps.resilience.errors import CallTimeout, ResilienceError
from apps.resilience.machine import FAILURE
from apps.resilience.retry import RetryConfig
from apps.resilience.runtime import Breaker, Permit, registry

T = TypeVar("T")
_NO_TENANT = object()

# Sync calls with a timeout run here so the caller can stop waiting; the call itself cannot be killed
# and finishes in the background (as resilience4j's TimeLimiter does with futures).
_timeout_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="bulwark-timeout")


def _tenant(tenant: Any) -> Any:
    return context.current().tenant if tenant is _NO_TENANT else tenant


class breaker:
    """Protect calls to the dependency `name`: as a decorator (sync or async) or a context manager (`with`, `async with`).

    A refused call raises `BreakerOpen` (or `BulkheadFull`) before the protected code runs. A decorated
    coroutine is also cut at the policy's `timeout_s` (CallTimeout); sync code is never interrupted here
    (use `resilient_call` for a sync timeout). Use a fresh `breaker(...)` per `with` block; decorated
    functions may be called from any thread.
    """

    def __init__(self, name: str, *, tenant: Any = _NO_TENANT) -> None:
        self.name = name
        self.tenant = tenant
        self._entered: list[tuple[Breaker, Permit]] = []

    def runtime(self) -> Breaker:
        return registry.get(self.name, _tenant(self.tenant))

    async def aruntime(self) -> Breaker:
        return await registry.aget(self.name, _tenant(self.tenant))

    def __call__(self, fn: Callable[..., T]) -> Callable[..., T]:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                runtime = await self.aruntime()
                return await _aattempt(runtime, fn, args, kwargs, runtime.config.timeout_s)

            return async_wrapper  # type: ignore[return-value]

        name, tenant = self.name, self.tenant

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            runtime = registry.get(name, context.current().tenant if tenant is _NO_TENANT else tenant)
            permit = runtime.acquire()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                runtime.record(permit, runtime.config.classify(exc))
                raise
            runtime.record(permit, "success")
            return result

        return wrapper

    def __enter__(self) -> breaker:
        runtime = self.runtime()
        self._entered.append((runtime, runtime.acquire()))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        runtime, permit = self._entered.pop()
        runtime.record(permit, runtime.config.classify(exc))

    async def __aenter__(self) -> breaker:
        runtime = await self.aruntime()
        self._entered.append((runtime, await runtime.aacquire()))
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


class last_good:
    """Fallback to the last successful result of this use site, kept in the shared cache for `ttl_s`.

    The cache is written at most once per `refresh_s` per process, so the success path stays cheap.
    """

    def __init__(self, key: str, *, ttl_s: float = 3600.0, refresh_s: float = 1.0) -> None:
        self.key = f"bulwark:resilience:last-good:{key}"
        self.ttl_s = ttl_s
        self.refresh_s = refresh_s
        self._written_at = float("-inf")
        self._lock = threading.Lock()

    def remember(self, value: Any, now: float) -> None:
        with self._lock:
            if now - self._written_at < self.refresh_s:
                return
            self._written_at = now
        cache.set(self.key, value, self.ttl_s)

    def __call__(self, exc: BaseException) -> Any:
        sentinel = object()
        value = cache.get(self.key, sentinel)
        if value is sentinel:
            raise exc
        return value


def _resolve_retry(name: str, retry: RetryConfig | str | int | None, tenant: Any) -> RetryConfig:
    if retry is None:
        return RetryConfig(max_attempts=1)
    if isinstance(retry, RetryConfig):
        return retry
    if isinstance(retry, int):
        return RetryConfig(max_attempts=retry)
    config = registry.retry_config(retry, tenant)
    if config is None:
        raise LookupError(f"No retry policy named {retry!r} for this tenant")
    return config


def _with_fallback(fallback: Callable[[BaseException], Any] | None, exc: BaseException) -> Any:
    if fallback is None:
        raise exc
    return fallback(exc)


def resilient_call(
    name: str,
    fn: Callable[..., T],
    *args: Any,
    retry: RetryConfig | str | int | None = None,
    timeout_s: float | None = None,
    fallback: Callable[[BaseException], Any] | None = None,
    tenant: Any = _NO_TENANT,
    clock: Clock | None = None,
    **kwargs: Any,
) -> T:
    """Call `fn(*args, **kwargs)` through the breaker of `name`, with retries, a timeout and a fallback.

    `retry` is a RetryConfig, the name of a tenant's RetryPolicy, or a number of attempts. Retries back
    off with full jitter, stop when the breaker refuses, and are throttled by the retry budget. The
    timeout is the argument, else the retry policy's attempt timeout, else the breaker policy's.
    `fallback(exc)` answers when every attempt failed or the call was refused.
    """
    tenant = _tenant(tenant)
    runtime = registry.get(name, tenant)
    clock = clock or runtime.clock
    retry_config = _resolve_retry(name, retry, tenant)
    timeout_s = timeout_s or retry_config.attempt_timeout_s or runtime.config.timeout_s
    runtime.retry_budget.record_call(clock.time())
    attempt = 1
    while True:
        try:
            result = _attempt(runtime, fn, args, kwargs, timeout_s)
        except Exception as exc:
            if not _may_retry(runtime, retry_config, exc, attempt, clock):
                return _with_fallback(fallback, exc)
            clock.sleep(retry_config.backoff_s(attempt))
            attempt += 1
            continue
        if isinstance(fallback, last_good):
            fallback.remember(result, clock.time())
        return result


def _may_retry(runtime: Breaker, config: RetryConfig, exc: Exception, attempt: int, clock: Clock) -> bool:
    if attempt >= config.max_attempts or not config.retryable(exc):
        return False
    if runtime.state == "open" and runtime.config.forced_state == "none" and clock.time() < runtime.open_until:
        return False  # never retry into an open breaker
    return runtime.retry_budget.try_spend(config, clock.time())


def _attempt(runtime: Breaker, fn: Callable[..., T], args: tuple, kwargs: dict, timeout_s: float | None) -> T:
    permit = runtime.acquire()
    try:
        if timeout_s:
            future = _timeout_pool.submit(contextvars.copy_context().run, fn, *args, **kwargs)
            try:
                result = future.result(timeout=timeout_s)
            except FutureTimeout:
                raise CallTimeout(runtime.name, timeout_s=timeout_s) from None
        else:
            result = fn(*args, **kwargs)
    except BaseException as exc:
        runtime.record(permit, FAILURE if isinstance(exc, CallTimeout) else runtime.config.classify(exc))
        raise
    runtime.record(permit, "success")
    return result


async def aresilient_call(
    name: str,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    retry: RetryConfig | str | int | None = None,
    timeout_s: float | None = None,
    fallback: Callable[[BaseException], Any] | None = None,
    tenant: Any = _NO_TENANT,
    clock: Clock | None = None,
    **kwargs: Any,
) -> T:
    """`resilient_call` for coroutines; the timeout cancels the call (asyncio.timeout)."""
    tenant = _tenant(tenant)
    runtime = await registry.aget(name, tenant)
    clock = clock or runtime.clock
    retry_config = retry if isinstance(retry, RetryConfig) else await sync_to_async(_resolve_retry)(name, retry, tenant)
    timeout_s = timeout_s or retry_config.attempt_timeout_s or runtime.config.timeout_s
    runtime.retry_budget.record_call(clock.time())
    attempt = 1
    while True:
        try:
            result = await _aattempt(runtime, fn, args, kwargs, timeout_s)
        except Exception as exc:
            if not _may_retry(runtime, retry_config, exc, attempt, clock):
                return _with_fallback(fallback, exc)
            await asyncio.sleep(retry_config.backoff_s(attempt))
            attempt += 1
            continue
        if isinstance(fallback, last_good):
            fallback.remember(result, clock.time())
        return result


async def _aattempt(
    runtime: Breaker, fn: Callable[..., Awaitable[T]], args: tuple, kwargs: dict, timeout_s: float | None
) -> T:
    permit = await runtime.aacquire()
    try:
        try:
            async with asyncio.timeout(timeout_s):
                result = await fn(*args, **kwargs)
        except TimeoutError:
            raise CallTimeout(runtime.name, timeout_s=timeout_s) from None
    except BaseException as exc:
        runtime.record(permit, FAILURE if isinstance(exc, CallTimeout) else runtime.config.classify(exc))
        raise
    runtime.record(permit, "success")
    return result


__all__ = ["breaker", "last_good", "resilient_call", "aresilient_call", "ResilienceError"]
