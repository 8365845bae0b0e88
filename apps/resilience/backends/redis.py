"""Breaker records in Redis, shared by every process and host; every change is one Lua script (EVALSHA).

redis-py's errors stay here: every method raises core's StoreUnavailable when Redis cannot be reached.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from redis.exceptions import RedisError

from apps.core.store import StoreUnavailable, redis_client, store_key
from apps.resilience.backends.base import BreakerBackend, PushesTransitions, gate_budget
from apps.resilience.machine import Admission, BreakerConfig, Figures, OutcomeBatch, SharedState, Transition

LUA_DIR = Path(__file__).parent / "lua"

logger = logging.getLogger(__name__)


# Keys of a breaker nobody touches for a day disappear (a deleted policy leaves nothing behind for long).
IDLE_TTL_S = 86_400
T = TypeVar("T")


def _store_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc


class RedisBackend(PushesTransitions, BreakerBackend):
    def __init__(self, client: Any = None) -> None:
        self.client = client if client is not None else redis_client()
        if self.client is None:
            raise RuntimeError("RedisBackend needs a Redis shared store (set REDIS_URL)")
        self._breaker = self.client.register_script((LUA_DIR / "breaker.lua").read_text())
        self._bulkhead = self.client.register_script((LUA_DIR / "bulkhead.lua").read_text())

    @staticmethod
    def _keys(key: str) -> list[str]:
        tagged = "{" + key + "}"  # one hash tag: every key of a breaker lives in one Cluster slot
        return [store_key("resilience", tagged, "state"), store_key("resilience", tagged, "outcomes"),
                store_key("resilience", tagged, "buckets"), store_key("resilience", tagged, "tickets"),
                store_key("resilience", tagged, "transitions"), store_key("resilience", tagged, "admits"),
                store_key("resilience", tagged, "in-flight")]

    def channel(self, key: str) -> str:
        return self._keys(key)[4]

    def listen(self, on_transition: Callable[[str, str, float, bool], None], stopping: threading.Event) -> None:
        """Call `on_transition(channel, state, open_until, gated)` for every transition published, until `stopping`."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.psubscribe(store_key("resilience", "*", "transitions"))
            while not stopping.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "pmessage":
                    continue
                try:
                    state, open_until, gated = _s(message["data"]).split(" ")
                    until = float(open_until)
                except ValueError:
                    # Pub/sub spans every database of the Redis server: a deployment of another version
                    # sharing the server (same key prefix) must not stop this listener.
                    logger.debug("ignored a malformed transition message on %s", message.get("channel"))
                    continue
                on_transition(_s(message["channel"]), state, until, gated == "1")
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        finally:
            pubsub.close()

    @staticmethod
    def _config_args(op: str, config: BreakerConfig, now: float, probe_timeout_s: float = 0.0) -> list:
        return [
            op, repr(now), config.window_kind, config.window_size, config.bucket_width_s,
            config.failure_rate_bp, config.slow_rate_bp, config.effective_minimum_calls,
            config.consecutive_failures or 0, repr(config.open_duration_s), repr(config.open_duration_multiplier),
            repr(config.max_open_duration_s), config.half_open_probes, repr(probe_timeout_s), IDLE_TTL_S,
            config.half_open_mode, repr(config.max_wait_in_half_open_s or 0.0), int(config.automatic_transition),
            int(config.metrics_only), gate_budget(),
        ]

    def _run(self, key: str, args: list) -> tuple[bool, SharedState]:
        raw = _store_call(lambda: self._breaker(keys=self._keys(key), args=args))
        granted, state, open_until, open_count, calls, failures, slow, consec = raw[:8]
        t_from, t_to, reason, tc, tf, ts, tk, gated = raw[8:]
        transition = None
        if t_to:
            transition = Transition(_s(t_from), _s(t_to), _s(reason), Figures(int(tc), int(tf), int(ts), int(tk)))
        shared = SharedState(
            _s(state), float(open_until), int(open_count), Figures(int(calls), int(failures), int(slow), int(consec)),
            transition, bool(gated),
        )
        return bool(granted), shared

    def merge(
        self, key: str, config: BreakerConfig, batch: OutcomeBatch, now: float, admission: Admission | None = None
    ) -> SharedState:
        args = self._config_args("merge", config, now)
        args += [batch.calls, batch.outcome_string, int(batch.had_success), batch.trailing_failures, batch.failures]
        if admission is None:
            args += ["", "", 0, 0]
        else:
            args += [admission.ticket or "", admission.process, admission.in_flight, admission.seq]
        for bucket, (calls, failures, slow) in batch.buckets.items():
            args += [bucket, calls, failures, slow]
        return self._run(key, args)[1]

    def read(self, key: str, config: BreakerConfig, now: float) -> SharedState:
        return self._run(key, self._config_args("read", config, now))[1]

    def admit(
        self, key: str, config: BreakerConfig, now: float, admission: Admission, ticket_timeout_s: float
    ) -> tuple[bool, SharedState]:
        args = self._config_args("admit", config, now, ticket_timeout_s)
        return self._run(key, [*args, admission.ticket, admission.process, admission.in_flight, admission.seq])

    def acquire_probe(
        self, key: str, config: BreakerConfig, now: float, probe_timeout_s: float, ticket: str
    ) -> tuple[bool, SharedState]:
        return self._run(key, [*self._config_args("probe", config, now, probe_timeout_s), ticket])

    def report_probe(
        self, key: str, config: BreakerConfig, *, ticket: str | None, outcome: str, slow: bool, now: float,
        probe_timeout_s: float,
    ) -> tuple[bool, SharedState]:
        args = self._config_args("report", config, now, probe_timeout_s)
        return self._run(key, [*args, ticket or "", outcome, int(slow)])

    def reset(self, key: str, config: BreakerConfig, now: float, reason: str = "reset by an operator") -> SharedState:
        return self._run(key, [*self._config_args("reset", config, now), reason])[1]

    def _slots_key(self, key: str) -> str:
        return store_key("resilience", "{" + key + "}", "bulkhead")

    def bulkhead_acquire(self, key: str, *, limit: int, lease_s: float, now: float) -> str | None:
        token = uuid.uuid4().hex
        ok = _store_call(lambda: self._bulkhead(
            keys=[self._slots_key(key)], args=["acquire", repr(now), limit, repr(lease_s), token]))
        return token if ok else None

    def bulkhead_release(self, key: str, token: str) -> None:
        _store_call(lambda: self._bulkhead(keys=[self._slots_key(key)], args=["release", 0, 0, 0, token]))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
