"""Live health over WebSocket: the readiness report, pushed every few seconds to signed-in users."""
from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core.health import readiness_report

PUSH_INTERVAL_S = 5.0


class HealthConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        self._pusher = asyncio.create_task(self._push())

    async def disconnect(self, code: int) -> None:
        pusher = getattr(self, "_pusher", None)
        if pusher is not None:
            pusher.cancel()

    async def _push(self) -> None:
        while True:
            ready, body = await database_sync_to_async(readiness_report)()
            await self.send_json({"ready": ready, **body})
            await asyncio.sleep(PUSH_INTERVAL_S)
