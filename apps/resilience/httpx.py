"""httpx transports (sync and async) that put every outgoing request behind the breaker of its host.

    client = httpx.Client(transport=BreakerTransport(policies={"api.stripe.com": "payments"}))

A host listed in `policies` uses that breaker; any other host uses a breaker named after the host
(or none, with `by_host=False`). A refused request raises `BreakerOpen`; a response whose status the
policy counts as a failure is returned to the caller and counted as a failure. A policy's `timeout_s`
replaces the client's timeouts for its requests.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from apps.resilience.decorators import _NO_TENANT, _tenant
from apps.resilience.runtime import Breaker, registry


def _apply_timeout(request: httpx.Request, timeout_s: float | None) -> None:
    if timeout_s:
        request.extensions["timeout"] = httpx.Timeout(timeout_s).as_dict()


class _BreakerRouting:
    def __init__(self, *, policies: Mapping[str, str] | None, by_host: bool, tenant: Any) -> None:
        self.policies = dict(policies or {})
        self.by_host = by_host
        self.tenant = tenant

    def name_for(self, request: httpx.Request) -> str | None:
        host = request.url.host
        return self.policies.get(host) or (host if self.by_host else None)

    def breaker_for(self, request: httpx.Request) -> Breaker | None:
        name = self.name_for(request)
        return registry.get(name, _tenant(self.tenant)) if name else None

    async def abreaker_for(self, request: httpx.Request) -> Breaker | None:
        name = self.name_for(request)
        return await registry.aget(name, _tenant(self.tenant)) if name else None


class BreakerTransport(_BreakerRouting, httpx.BaseTransport):
    def __init__(
        self, transport: httpx.BaseTransport | None = None, *, policies: Mapping[str, str] | None = None,
        by_host: bool = True, tenant: Any = _NO_TENANT,
    ) -> None:
        super().__init__(policies=policies, by_host=by_host, tenant=tenant)
        self.transport = transport or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        runtime = self.breaker_for(request)
        if runtime is None:
            return self.transport.handle_request(request)
        _apply_timeout(request, runtime.config.timeout_s)
        permit = runtime.acquire()
        try:
            response = self.transport.handle_request(request)
        except BaseException as exc:
            runtime.record(permit, runtime.config.classify(exc))
            raise
        runtime.record(permit, runtime.config.classify_status(response.status_code))
        return response

    def close(self) -> None:
        self.transport.close()


class AsyncBreakerTransport(_BreakerRouting, httpx.AsyncBaseTransport):
    def __init__(
        self, transport: httpx.AsyncBaseTransport | None = None, *, policies: Mapping[str, str] | None = None,
        by_host: bool = True, tenant: Any = _NO_TENANT,
    ) -> None:
        super().__init__(policies=policies, by_host=by_host, tenant=tenant)
        self.transport = transport or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        runtime = await self.abreaker_for(request)
        if runtime is None:
            return await self.transport.handle_async_request(request)
        _apply_timeout(request, runtime.config.timeout_s)
        permit = await runtime.aacquire()
        try:
            response = await self.transport.handle_async_request(request)
        except BaseException as exc:
            runtime.record(permit, runtime.config.classify(exc))
            raise
        runtime.record(permit, runtime.config.classify_status(response.status_code))
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()
