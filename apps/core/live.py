"""Live events for the operator console: any app publishes what changed, the console streams it.

    publish(tenant_id, "breaker.transition", {"breaker": "payments", "state": "open"})

Events go to the tenant's channel-layer group (`console_group(tenant_id)`; `None` is platform-wide) as
`{"type": "console.event", "event": <event_type>, "tenant": tenant_id, "data": {...}}`. Publishing never
raises into the caller: a console that is down or slow must not fail a request, a job or a breaker.
The console app owns what subscribers do with the events (throttling, latest-state-wins backpressure).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

PLATFORM_GROUP = "console.platform"


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
    # Called from inside an event loop (an async view or consumer): send without blocking the loop.
    task = asyncio.ensure_future(layer.group_send(group, message))
    task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("live event was not published: %s", task.exception())
