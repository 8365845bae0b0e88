"""`/ws/console/`: the live console of one tenant, at most one message a second, newest state winning.

Every message is `{"type": "state", "tenant": "<slug>", "data": {section: {item: value}}}`: the first one
carries the whole state, later ones what changed (a removed item is null). Events that apps publish
(`apps.core.live.publish`) arrive in the section `events`, keyed `<event>:<id or name>`, through the
process's pulse of the tenant (`hub.py`), which is the tenant group's one member in this process.

Backpressure: incoming state and events are merged into one pending dict (one entry per item), and a
separate sender task writes it out at most every MIN_SEND_INTERVAL_S. While a slow client's socket is
still taking the previous message, newer values overwrite older ones in the pending dict: memory per
socket is bounded by the number of items, never by the number of updates.

Access is checked again while the socket is open (the pulse's re-check, `auth.socket_principal_recheck`):
a socket whose token was revoked or whose user left the tenant is closed with 4401 / 4403.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.console.auth import SocketPrincipal, SocketRefused, socket_principal
from apps.console.conf import console_settings
from apps.console.hub import Sections, hub, merge

logger = logging.getLogger(__name__)

class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    principal: SocketPrincipal | None = None

    async def connect(self) -> None:
        try:
            self.principal = await database_sync_to_async(socket_principal)(self.scope)
        except SocketRefused as refused:
            await self.close(code=refused.code)
            return
        self.tenant_id = self.principal.tenant.pk
        self.tenant_slug = self.principal.tenant.slug
        self._pending: Sections = {}
        self._has_pending = asyncio.Event()
        await self.accept()
        self._sender = asyncio.create_task(self._send_loop())
        hub.join(self.tenant_id, self)

    async def disconnect(self, code: int) -> None:
        if self.principal is None:
            return
        hub.leave(self.tenant_id, self)
        self._sender.cancel()

    def refuse(self, code: int) -> None:
        """The pulse found the principal no longer allowed: stop sending at once and close with `code`."""
        hub.leave(self.tenant_id, self)
        self._sender.cancel()
        self._closing = asyncio.ensure_future(self.close(code=code))

    async def receive_json(self, content: Any, **kwargs) -> None:
        """Clients only listen; actions are HTTP requests with CSRF and roles."""

    def offer(self, sections: Sections) -> None:
        merge(self._pending, sections)
        self._has_pending.set()

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_sent = -float("inf")
        while True:
            await self._has_pending.wait()
            wait_s = last_sent + console_settings.MIN_SEND_INTERVAL_S - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            data, self._pending = self._pending, {}
            self._has_pending.clear()
            last_sent = loop.time()
            await self.send_json({"type": "state", "tenant": self.tenant_slug, "data": data})
