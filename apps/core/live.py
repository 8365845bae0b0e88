"""Live events for the operator console: any app publishes what changed, the console streams it.

    publish(tenant_id, "breaker.transition", {"breaker": "payments", "state": "open"})

Events go to the tenant's channel-layer group (`console_group(tenant_id)`; `None` is platform-wide) as
`{"type": "console.event", "event": <event_type>, "tenant": tenant_id, "data": {...}}`. Publishing never
raises into the caller: a console that is down or slow must not fail a request, a job or a breaker.
The console app owns what subscribers do with the events (throttling, latest-state-wins backpressure).

Events are states, not a log: published from inside an event loop, the events of one loop iteration are
merged per `event_key` (the newest data of an item wins) and sent once, so a burst of progress reports is
one message on the channel layer instead of a hundred that overflow each subscriber's channel (whose
capacity drops the newest message, the one that matters).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from typing import Any

logger = logging.getLogger(__name__)

PLATFORM_GROUP = "console.platform"
_unkeyed = itertools.count()
# Per running event loop: the events published during its current iteration, not sent yet.
_pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict] = weakref.WeakKeyDictionary()


def event_key(event_type: str, data: dict[str, Any]) -> str:
    """What an event is about: `<event>:<id or name>`; newer data of the same key replaces older."""
    identity = data.get("id", data.get("name", data.get("breaker")))
    return f"{event_type}:{identity if identity is not None else ''}"


def console_group(tenant_id: int | None) -> str:
    return PLATFORM_GROUP if tenant_id is None else f"console.t{int(tenant_id)}"


def publish(tenant_id: int | None, event_type: str, data: dict[str, Any]) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "console.event", "event": event_type, "tenant": tenant_id, "data": data}
    group = console_group(tenant_id)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # noqa: BLE001 - the console is best-effort; the caller's work is not
            logger.warning("live event %s for tenant %s was not published", event_type, tenant_id, exc_info=True)
        return
    # Called from inside an event loop (an async view or consumer): send without blocking the loop, once
    # per item however often it changed during this iteration.
    loop = asyncio.get_running_loop()
    pending = _pending.setdefault(loop, {})
    identity = event_key(event_type, data) if any(k in data for k in ("id", "name", "breaker")) else next(_unkeyed)
    if not pending:
        loop.call_soon(_flush, loop, layer)
    pending[(group, identity)] = message


def _flush(loop: asyncio.AbstractEventLoop, layer) -> None:
    pending = _pending.pop(loop, {})
    if pending:
        task = loop.create_task(_send_all(layer, list(pending.items())))
        task.add_done_callback(_log_failure)


async def _send_all(layer, items: list) -> None:
    for (group, _identity), message in items:
        await layer.group_send(group, message)


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("live event was not published: %s", task.exception())
