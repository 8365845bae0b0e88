"""Redis backend: one EVALSHA per decision for all the limits of a request, keys with TTLs."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from redis.exceptions import NoScriptError

from apps.core.clock import Clock
from apps.core.store import StoreUnavailable, redis_client
from apps.ratelimit.algorithms import GCRA, MOVING_WINDOW, SLIDING_WINDOW, Outcome, State, evaluate
from apps.ratelimit.backends.base import Hit, RateLimitBackend

DECIDE_LUA = (Path(__file__).parent / "lua" / "decide.lua").read_text()
_ALGORITHM_CODES = {GCRA: 1, SLIDING_WINDOW: 2, MOVING_WINDOW: 3}


def _parse_state(raw: bytes | str) -> State | None:
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    return tuple(int(part) for part in text.split(":"))


class RedisBackend(RateLimitBackend):
    """Uses the shared store's client unless given a `client` or `url` (tests point one at their own server).

    Without an injected clock the script reads the Redis server's time, so web hosts with skewed clocks
    still agree on every key's state.
    """

    def __init__(self, *, client: Any = None, url: str | None = None, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        if client is None and url is not None:
            client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.client = client if client is not None else redis_client()
        if self.client is None:
            raise ValueError("RedisBackend needs Redis: set REDIS_URL or pass client= / url=")
        self._decide = self.client.register_script(DECIDE_LUA)

    def decide(self, hits: Sequence[Hit], *, dry_run: bool = False) -> list[Outcome]:
        args: list[Any] = ["" if self.clock is None else self.clock.time_us(), int(dry_run)]
        for hit in hits:
            limit = hit.limit
            args += [_ALGORITHM_CODES[limit.algorithm], limit.capacity, limit.interval_us, hit.cost, int(hit.enforce)]
        keys = [hit.key for hit in hits]
        try:
            try:
                # EVALSHA straight on the client: redis-py's Script object costs a few µs more per call.
                reply = self.client.evalsha(self._decide.sha, len(keys), *keys, *args)
            except NoScriptError:  # a restarted or flushed server: load it again, once
                reply = self._decide(keys=keys, args=args)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc
        now_us = int(reply[0])
        return [
            evaluate(hit.limit, _parse_state(raw), now_us, hit.cost)[0]
            for hit, raw in zip(hits, reply[1:], strict=True)
        ]

    def reset(self, key: str) -> bool:
        try:
            return bool(self.client.delete(key))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc
