"""One pulse per watched tenant and process: reads the tenant's console state once and fans it out.

However many sockets watch a tenant in a process, its state is read once per interval (fast sections every
PULSE_INTERVAL_S, metric sections every METRICS_INTERVAL_S) and only what changed is offered to each
socket, which merges it into what it has not sent yet. The pulse stops when the last socket leaves.
Polling (rather than trusting events alone) is what makes the console right on the embedded default,
where a worker's job progress or another process's breaker transition never reaches this process's
in-memory channel layer; published events only make it sooner (`poke`).

Events (`apps.core.live.publish`) reach a process once per watched tenant, not once per socket: the pulse
is the only member of the tenant's group in this process and hands each event to its sockets. With 200
sockets on one process, channels-redis would otherwise put 200 copies of each event into that process's
one inbox, whose capacity (100) drops the overflow.

The pulse also checks its sockets' principals again every PRINCIPAL_RECHECK_S (`auth.py`), once per
principal however many sockets it has, and closes the sockets of a revoked token or a removed member.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.console import auth, selectors
from apps.console.conf import console_settings
from apps.core.live import console_group, event_key
from apps.tenancy.models import Tenant

logger = logging.getLogger(__name__)

Sections = dict[str, dict[str, Any]]
# Events after which the breaker board and job queue are read again at once instead of at the next pulse.
POKE_PREFIXES = ("breaker.", "job.")


class Subscriber(Protocol):
    principal: auth.SocketPrincipal

    def offer(self, sections: Sections) -> None: ...

    def refuse(self, code: int) -> None:
        """Close with `code` (4401/4403): the principal may no longer watch the tenant."""


def diff(previous: Sections, current: Sections) -> Sections:
    """Items added or changed since `previous`, and removed ones as None."""
    changes: Sections = {}
    for section in previous.keys() | current.keys():
        old, new = previous.get(section, {}), current.get(section, {})
        changed = {key: value for key, value in new.items() if old.get(key, _MISSING) != value}
        changed.update({key: None for key in old.keys() - new.keys()})
        if changed:
            changes[section] = changed
    return changes


def merge(into: Sections, sections: Sections) -> Sections:
    for section, items in sections.items():
        into.setdefault(section, {}).update(items)
    return into


_MISSING = object()


def _read(tenant_id: int, reader: Callable[..., Sections]) -> Sections | None:
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    return None if tenant is None else reader(tenant=tenant)


def _recheck_all(principals: list[auth.SocketPrincipal]) -> list[auth.SocketPrincipal | auth.SocketRefused]:
    verdicts: list[auth.SocketPrincipal | auth.SocketRefused] = []
    for principal in principals:
        try:
            verdicts.append(auth.socket_principal_recheck(principal))
        except auth.SocketRefused as refused:
            verdicts.append(refused)
    return verdicts


class TenantPulse:
    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.subscribers: set[Subscriber] = set()
        self.state: dict[str, Sections] = {"fast": {}, "metrics": {}}
        self.ready = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"console-pulse-{self.tenant_id}"),
                       asyncio.create_task(self._listen(), name=f"console-events-{self.tenant_id}")]

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _listen(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        group = console_group(self.tenant_id)
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            while True:
                message = await layer.receive(channel)
                if message.get("type") == "console.event" and message.get("tenant") == self.tenant_id:
                    self.event(message)
        finally:
            await asyncio.shield(layer.group_discard(group, channel))

    def event(self, message: dict[str, Any]) -> None:
        event, data = str(message.get("event", "")), message.get("data") or {}
        item = {"events": {event_key(event, data): {"event": event, "data": data, "at": time.time()}}}
        for subscriber in list(self.subscribers):
            subscriber.offer(item)
        if event.startswith(POKE_PREFIXES):
            self.poke()

    def poke(self) -> None:
        """Read the fast sections now (an event said a breaker or a job changed)."""
        self._wake.set()

    def full_state(self) -> Sections:
        return merge(merge({}, self.state["fast"]), self.state["metrics"])

    async def _refresh(self, producer: str, reader: Callable[..., Sections]) -> None:
        try:
            current = await database_sync_to_async(_read)(self.tenant_id, reader)
        except Exception:  # noqa: BLE001 - a store or database hiccup must not end the stream
            logger.warning("console: reading %s of tenant %s failed", producer, self.tenant_id, exc_info=True)
            return
        if current is None:
            return
        changes = diff(self.state[producer], current)
        self.state[producer] = current
        if changes:
            for subscriber in list(self.subscribers):
                subscriber.offer(changes)

    async def recheck(self) -> None:
        """Check each subscriber's principal again, once per principal, and refuse the ones that lost access.
        A store or database failure keeps the sockets open (as the HTTP door, the last answer stands)."""
        sockets: dict[tuple, list[Subscriber]] = defaultdict(list)
        for subscriber in list(self.subscribers):
            sockets[subscriber.principal.recheck_key].append(subscriber)
        if not sockets:
            return
        try:
            verdicts = await database_sync_to_async(_recheck_all)([group[0].principal for group in sockets.values()])
        except Exception:  # noqa: BLE001 - a store or database hiccup must not end the stream
            logger.warning("console: re-checking the sockets of tenant %s failed", self.tenant_id, exc_info=True)
            return
        for group, verdict in zip(sockets.values(), verdicts, strict=True):
            for subscriber in group:
                if isinstance(verdict, auth.SocketRefused):
                    subscriber.refuse(verdict.code)
                else:
                    subscriber.principal = verdict

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_metrics = 0.0
        next_recheck = loop.time() + console_settings.PRINCIPAL_RECHECK_S  # a new socket was just checked
        while True:
            await self._refresh("fast", selectors.fast_sections)
            if loop.time() >= next_metrics:
                next_metrics = loop.time() + console_settings.METRICS_INTERVAL_S
                await self._refresh("metrics", selectors.metric_sections)
            if loop.time() >= next_recheck:
                next_recheck = loop.time() + console_settings.PRINCIPAL_RECHECK_S
                await self.recheck()
            self.ready = True
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=console_settings.PULSE_INTERVAL_S)


class Hub:
    """The pulses of this process (one event loop: the ASGI server's)."""

    def __init__(self) -> None:
        self.pulses: dict[int, TenantPulse] = {}

    def join(self, tenant_id: int, subscriber: Subscriber) -> None:
        pulse = self.pulses.get(tenant_id)
        if pulse is None:
            pulse = self.pulses[tenant_id] = TenantPulse(tenant_id)
            pulse.start()
        pulse.subscribers.add(subscriber)
        if pulse.ready:  # a late joiner gets everything at once; the first read offers everything anyway
            subscriber.offer(pulse.full_state())

    def leave(self, tenant_id: int, subscriber: Subscriber) -> None:
        pulse = self.pulses.get(tenant_id)
        if pulse is None:
            return
        pulse.subscribers.discard(subscriber)
        if not pulse.subscribers:
            pulse.stop()
            del self.pulses[tenant_id]

    def poke(self, tenant_id: int) -> None:
        pulse = self.pulses.get(tenant_id)
        if pulse is not None:
            pulse.poke()


hub = Hub()
