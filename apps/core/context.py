"""Who is acting and from where: a context variable that middleware, jobs and commands bind for audit and logs."""
from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Actor:
    """The principal behind a change. kind is one of user, token, system, anonymous."""

    kind: str
    id: str
    display: str

    @classmethod
    def system(cls, display: str = "system", id: str = "system") -> Actor:
        return cls(kind="system", id=id, display=display)


ANONYMOUS = Actor(kind="anonymous", id="", display="anonymous")


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_ip: str | None = None
    user_agent: str = ""
    actor: Actor = ANONYMOUS
    tenant: Any = None
    extra: dict = field(default_factory=dict)

    def with_(self, **changes: Any) -> RequestContext:
        return replace(self, **changes)


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("bulwark_context", default=None)


def current() -> RequestContext:
    return _current.get() or RequestContext()


def current_actor() -> Actor:
    ctx = _current.get()
    return ctx.actor if ctx is not None else Actor.system()


@contextmanager
def bind(ctx: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def update(**changes: Any) -> RequestContext:
    """Refine the bound context in place (e.g. once the tenant and actor are resolved)."""
    ctx = current().with_(**changes)
    _current.set(ctx)
    return ctx
