"""Request observers: how an app above monitoring (optimization, ...) watches every request the monitoring
middleware measures, without monitoring importing it.

    class Observer:
        def begin(self, request) -> object: ...                          # before the rest of the stack runs
        def end(self, request, response, state, timing: RequestTiming) -> None: ...

    register_request_observer(Observer())   # e.g. in the app's AppConfig.ready()

`state` is what `begin` returned, handed back to `end`. `begin` returning None means the observer does not
watch this request (e.g. not sampled): its `end` is not called, and when no observer watches a request the
middleware neither reads the CPU clock nor builds a timing for it. `timing` carries `wall_ms` (the request's duration,
the figure of `X-Response-Time`), `cpu_ms` (CPU time of the thread running the middleware: under ASGI the
event loop's share only), `db_ms` and `db_queries`.
With no observer registered the middleware pays one truthiness test per request (it does not even read
the CPU clock). An observer that raises is logged and skipped (a `begin` that raised gets no `end`): it
never breaks the request.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RequestTiming:
    wall_ms: float
    cpu_ms: float
    db_ms: float
    db_queries: int


class RequestObserver(Protocol):
    def begin(self, request: HttpRequest) -> Any: ...

    def end(self, request: HttpRequest, response: HttpResponse, state: Any, timing: RequestTiming) -> None: ...


# A tuple replaced whole (never mutated), so the middleware reads it without a lock.
_observers: tuple[RequestObserver, ...] = ()
_lock = threading.Lock()


def register_request_observer(observer: RequestObserver) -> RequestObserver:
    """Observe every request from now on (registering the same object twice observes once)."""
    global _observers
    with _lock:
        if observer not in _observers:
            _observers = (*_observers, observer)
    return observer


def unregister_request_observer(observer: RequestObserver) -> None:
    global _observers
    with _lock:
        _observers = tuple(o for o in _observers if o is not observer)


def request_observers() -> tuple[RequestObserver, ...]:
    return _observers


def begin_all(observers: tuple[RequestObserver, ...], request: HttpRequest) -> list[Any] | None:
    """The observers' states, in order; None when no observer watches this request (every state None)."""
    states = []
    watching = False
    for observer in observers:
        try:
            state = observer.begin(request)
        except Exception:
            log.exception("request observer %r failed in begin(); skipped for this request", observer)
            state = None
        states.append(state)
        if state is not None:
            watching = True
    return states if watching else None


def end_all(observers: tuple[RequestObserver, ...], states: list[Any], request: HttpRequest,
            response: HttpResponse, timing: RequestTiming) -> None:
    for observer, state in zip(observers, states, strict=True):
        if state is None:
            continue
        try:
            observer.end(request, response, state, timing)
        except Exception:
            log.exception("request observer %r failed in end()", observer)
