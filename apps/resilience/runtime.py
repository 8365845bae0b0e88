"""Breakers as each process runs them: the closed path is counted in memory and merged into the shared
record in small batches by one background sync thread; transitions come back with every merge or sync, and are
pushed to every process by the shared store as they happen.

Per call on the healthy closed path: a dict lookup, a state check, an in-flight count and a counter update
under a lock; no network. A failure is merged as it returns (one Lua call answering the state). Once a
failure is counted and few more would open the breaker, the record is *gated*: every call start takes a
ticket from the remaining failure budget, atomically, with the calls still in flight of every process
counted against it, and every outcome is reported as it returns; a call finding no budget waits for calls
to return (`ADMISSION_WAIT_S`) or is refused. So after the first failure returns anywhere, no more calls
start cluster-wide than could still fail before the breaker opens. The sync thread merges each breaker's
successes every FLUSH_INTERVAL_S and re-reads idle breakers every SYNC_INTERVAL_S (a safety net behind the
push). A breaker that is recovering (open past its end, or half-open) asks the store per call, for an
atomic probe ticket. If the store fails (the backend raises core's
StoreUnavailable), every breaker of the process continues on a process-local memory backend, core's
StoreGuard reports "degraded", and the sync thread probes the store once per `STORE_RETRY_INTERVAL_S`, adopting
the shared state again when it answers. Transitions and the per-minute scorecard go to the database
through core's one stats pipeline (`stats.BreakerHistorySink`), not this thread. Time is read from the
registry's core `Clock` only.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from asgiref.sync import sync_to_async

from apps.core import health
from apps.core import stats as core_stats
from apps.core.clock import SYSTEM_CLOCK, Clock
from apps.core.conf import core_settings
from apps.core.histogram import bucket_of
from apps.core.store import StoreGuard, StoreUnavailable
from apps.resilience.backends import get_backend
from apps.resilience.backends.base import BreakerBackend, PushesTransitions
from apps.resilience.backends.memory import MemoryBackend
from apps.resilience.conf import resilience_settings
from apps.resilience.errors import BreakerOpen, BulkheadFull
from apps.resilience.machine import (
    CLOSED,
    FAILURE,
    IGNORED,
    OPEN,
    Admission,
    BreakerConfig,
    Figures,
    OutcomeBatch,
    SharedState,
    Transition,
)
from apps.resilience.retry import RetryBudget, RetryConfig
from apps.resilience.snapshot import policy_snapshot
from apps.resilience.stats import BreakerHistorySink, MinuteStats

log = logging.getLogger(__name__)
HEALTH_COMPONENT = "resilience:store"
POLICY_HEALTH_COMPONENT = "resilience:policies"


class Permit:
    """Leave to make one call; hand it back to `Breaker.record` with the outcome.

    A half-open probe carries its ticket (`probe` is True), a call started while gated its `gate` ticket;
    the report of the outcome gives either back. `free` marks a call started without either, counted in
    its process's calls in flight until it returns.
    """

    __slots__ = ("ticket", "counted", "started", "slot", "gate", "free")

    def __init__(
        self, ticket: str | None, counted: bool, started: float, slot: Any = None, gate: str | None = None,
        free: bool = False,
    ) -> None:
        self.ticket = ticket
        self.counted = counted
        self.started = started
        self.slot = slot
        self.gate = gate
        self.free = free

    @property
    def probe(self) -> bool:
        return self.ticket is not None


class Breaker:
    """One dependency of one tenant in this process."""

    def __init__(self, *, tenant_id: int, config: BreakerConfig, registry: Registry) -> None:
        self.tenant_id = tenant_id
        self.name = config.name
        self.key = f"t{tenant_id}:{config.name}"
        self.registry = registry
        self.clock = registry.clock
        self._now = registry.clock.time
        self.lock = threading.Lock()
        self.state = CLOSED
        self.open_until = 0.0
        self.gated = False
        self.figures = Figures()
        self.in_flight: deque[None] = deque()  # one entry per free call of this process not yet returned
        self._report_seq = itertools.count(1)
        self._budget_freed = threading.Condition()  # a gated start waiting is woken by outcomes and pushes
        self.last_sync = 0.0
        self.probe_denied_until = 0.0
        self.trailing_failures = 0  # this process's failures in a row, across merges
        self.retry_budget = RetryBudget()
        self.config_checked_at = 0.0  # the snapshot clock's monotonic time of the policy last looked up
        self.minutes: dict[int, MinuteStats] = {}
        self._configure(config)

    def _configure(self, config: BreakerConfig) -> None:
        self.config = config
        self.pending = OutcomeBatch(config)
        self.semaphore = (
            threading.BoundedSemaphore(config.max_concurrent)
            if config.max_concurrent and config.bulkhead_scope == "process" else None
        )

    def reconfigure(self, config: BreakerConfig) -> None:
        with self.lock:
            if config == self.config:
                self.config = config  # the same policy recompiled: keep the pending batch
            else:
                self._configure(config)

    # The hot path.
    def acquire(self, *, bulkhead: bool = True, wait: bool = True, in_flight: bool = True) -> Permit:
        """Leave for one call, or BreakerOpen / BulkheadFull. `bulkhead=False` skips the slot (decision API).

        While gated, `wait=False` refuses at once when the budget is taken rather than wait for it (coroutines
        use `aacquire`). `in_flight=False` (decision API) leaves a free call out of this process's calls in
        flight: its caller is elsewhere, and reports it whenever it likes.
        """
        config = self.config
        if self.state == CLOSED and not self.gated and config.forced_state == "none" and not (
                bulkhead and config.max_concurrent):
            # The healthy closed path: nothing to ask anyone, only this process's calls in flight to count.
            if in_flight:
                self.in_flight.append(None)
            return Permit(None, True, self._now(), None, None, in_flight)
        return self._acquire(bulkhead, resilience_settings.ADMISSION_WAIT_S if wait else 0.0, in_flight, True)

    def _acquire(self, bulkhead: bool, wait_s: float, in_flight: bool, count_refusal: bool) -> Permit:
        config = self.config
        forced = config.forced_state
        now = self._now()
        if forced == "disabled":
            return Permit(None, False, now)
        if forced == "forced_open":
            self._count_rejected(now)
            raise BreakerOpen(self.name, state="forced_open")
        ticket = gate = None
        if forced == "none":
            if self.state != CLOSED:
                ticket = self._admit_while_recovering(now)
            if self.gated and ticket is None and not config.metrics_only:
                gate = self._admit_gated(now, wait_s, count_refusal)
        slot = None
        if bulkhead and config.max_concurrent:
            try:
                slot = self._take_slot(config, now)
            except BulkheadFull:
                if gate is not None:  # the call never starts: its share of the budget goes back
                    self.record(Permit(None, True, now, gate=gate), IGNORED, 0.0)
                raise
        free = in_flight and ticket is None and gate is None
        if free:
            self.in_flight.append(None)
        return Permit(ticket, True, now, slot, gate, free)

    async def aacquire(self, *, bulkhead: bool = True) -> Permit:
        """`acquire` for coroutines: a gated start waits for the budget on the loop, never blocking it."""
        waited, step = 0.0, resilience_settings.FLUSH_INTERVAL_S
        while True:
            last = waited >= resilience_settings.ADMISSION_WAIT_S
            try:
                return self._acquire(bulkhead, 0.0, True, last)  # a refusal is counted once, at the end
            except BreakerOpen as refusal:
                if refusal.state != CLOSED or last:
                    raise
            await asyncio.sleep(step)
            waited += step

    def record(
        self, permit: Permit, outcome: str, duration_s: float | None = None, cost: float | None = None,
        *, probe: bool = False,
    ) -> bool:
        """Count one call's outcome. `probe` (the decision API) reports against a probe ticket out, the oldest one
        if the permit names none. False when the probe's ticket had expired: the outcome is then counted as
        ignored (the ticket was given back and may have gone to another probe)."""
        if permit.slot is not None:
            self._release_slot(permit.slot)
        if not permit.counted or self.config.forced_state == "disabled":
            if permit.free:
                self.in_flight.pop()
            return True
        now = self._now()
        if duration_s is None:
            duration_s = now - permit.started
        config = self.config
        slow = config.is_slow(duration_s)
        accepted = True
        if permit.probe or probe:
            accepted, shared = self.registry.store(
                lambda b: b.report_probe(self.key, config, ticket=permit.ticket, outcome=outcome, slow=slow, now=now,
                                         probe_timeout_s=resilience_settings.PROBE_TIMEOUT_S)
            )
            self._adopt(shared, now)
            if not accepted:
                outcome = IGNORED
        failed = outcome == FAILURE
        duration_ms = duration_s * 1000.0
        bucket = bucket_of(duration_ms)
        minute_key = int(now // 60)
        # While gated (or with a gate ticket to give back), every outcome is reported as it returns.
        report_now = (permit.gate is not None or self.gated) and not permit.probe and not probe
        admission = None
        with self.lock:
            if permit.free:
                self.in_flight.pop()
            if report_now:
                admission = Admission(self.registry.process_id, len(self.in_flight), next(self._report_seq),
                                      permit.gate)
            minute = self.minutes.get(minute_key)
            if minute is None:
                minute = self.minutes[minute_key] = MinuteStats()
            minute.calls += 1
            minute.failures += failed
            minute.ignored += outcome == IGNORED
            minute.slow += slow
            minute.duration_ms_sum += duration_ms
            minute.histogram[bucket] = minute.histogram.get(bucket, 0) + 1
            if cost is not None:
                minute.cost_sum += cost
                minute.cost_calls += 1
            batch = None
            if outcome != IGNORED and not permit.probe and not probe:
                self.pending.add(failed, slow, now)
                self.trailing_failures = self.trailing_failures + 1 if failed else 0
                if (failed and self.state == CLOSED and not config.metrics_only) or report_now:
                    # A failure is merged at once (one Lua call that counts it and answers the state), so a
                    # trip is known here when the call that caused it returns, and pushed to the others;
                    # it also tells the gate how many of this process's calls are still out.
                    batch, self.pending = self.pending, OutcomeBatch(config)
                    if failed and self.state == CLOSED and not config.metrics_only and self._would_trip(config, batch):
                        # This process's own calls are enough to open: stop calling now, whatever the store says.
                        self.state = OPEN
                        self.open_until = now + config.open_duration_s
            elif report_now:
                batch = OutcomeBatch(config)  # an ignored outcome: only the gate ticket goes back
            if batch is not None and admission is None and not config.metrics_only:
                admission = Admission(self.registry.process_id, len(self.in_flight), next(self._report_seq))
        if batch is not None:
            self._adopt(self.registry.store(lambda b: b.merge(self.key, config, batch, now, admission)), now)
            self._wake_waiters()
        return accepted

    def _would_trip(self, config: BreakerConfig, batch: OutcomeBatch) -> bool:
        """This process's own calls alone would open the breaker (its failures in a row, or its batch's rate)."""
        if config.consecutive_failures:
            return self.trailing_failures >= config.consecutive_failures
        return (batch.calls >= config.effective_minimum_calls
                and batch.failures * 10_000 >= config.failure_rate_bp * batch.calls)

    def _admit_while_recovering(self, now: float) -> str | None:
        """A probe ticket, or None if the breaker closed meanwhile; a refusal raises BreakerOpen."""
        if self.state == OPEN and now < self.open_until:
            self._refuse(now, OPEN, self.open_until - now)
        if now < self.probe_denied_until:
            self._refuse(now, self.state, self.probe_denied_until - now)
        config = self.config
        ticket = uuid.uuid4().hex[:16]
        granted, shared = self.registry.store(
            lambda b: b.acquire_probe(self.key, config, now, resilience_settings.PROBE_TIMEOUT_S, ticket)
        )
        self._adopt(shared, now)
        if granted:
            return ticket
        if self.state == CLOSED:  # another process's probes closed it meanwhile
            return None
        # Every probe ticket is out: refuse locally for a flush interval instead of asking the store per call;
        # then ask again, so the probe's verdict reaches this process within that interval.
        self.probe_denied_until = now + resilience_settings.FLUSH_INTERVAL_S
        retry_after_s = self.open_until - now if self.state == OPEN else resilience_settings.FLUSH_INTERVAL_S
        self._refuse(now, self.state, retry_after_s)

    def _admit_gated(self, now: float, wait_s: float, count_refusal: bool) -> str | None:
        """A gate ticket; None if the gate was lifted meanwhile (the call starts free). Refused (BreakerOpen)
        when the breaker opened, or when the budget stays taken for `wait_s` of waiting."""
        waited, step = 0.0, resilience_settings.FLUSH_INTERVAL_S
        config = self.config
        while True:
            ticket = uuid.uuid4().hex[:16]
            with self.lock:
                admission = Admission(self.registry.process_id, len(self.in_flight), next(self._report_seq), ticket)
            granted, shared = self.registry.store(
                lambda b, now=now, admission=admission: b.admit(
                    self.key, config, now, admission, resilience_settings.PROBE_TIMEOUT_S)
            )
            self._adopt(shared, now)
            if granted:
                return ticket
            if shared.state != CLOSED:
                self._refuse(now, shared.state, max(shared.open_until - now, 0.0) or None)
            if not shared.gated:
                return None
            if waited >= wait_s:
                if not count_refusal:
                    raise BreakerOpen(self.name, state=CLOSED, retry_after_s=step)
                self._refuse(now, CLOSED, step)
            # Woken early by an outcome of this process or a pushed change; a timed-out wait counts towards the
            # limit (so the wait ends on a fake clock too).
            with self._budget_freed:
                if not self._budget_freed.wait(min(step, wait_s - waited)):
                    waited += min(step, wait_s - waited)
            now = self._now()

    def _wake_waiters(self) -> None:
        with self._budget_freed:
            self._budget_freed.notify_all()

    def _refuse(self, now: float, state: str, retry_after_s: float | None) -> None:
        self._count_rejected(now)
        raise BreakerOpen(self.name, state=state, retry_after_s=retry_after_s)

    def _count_rejected(self, now: float) -> None:
        with self.lock:
            minute = self.minutes.get(int(now // 60))
            if minute is None:
                minute = self.minutes[int(now // 60)] = MinuteStats()
            minute.rejected += 1

    def _take_slot(self, config: BreakerConfig, now: float) -> Any:
        if self.semaphore is not None:
            if not self.semaphore.acquire(blocking=False):
                self._count_rejected(now)
                raise BulkheadFull(self.name, limit=config.max_concurrent)
            return self.semaphore
        token = self.registry.store(
            lambda b: b.bulkhead_acquire(
                self.key, limit=config.max_concurrent, lease_s=resilience_settings.BULKHEAD_LEASE_S, now=now
            )
        )
        if token is None:
            self._count_rejected(now)
            raise BulkheadFull(self.name, limit=config.max_concurrent)
        return token

    def _release_slot(self, slot: Any) -> None:
        if isinstance(slot, str):
            self.registry.store(lambda b: b.bulkhead_release(self.key, slot))
        else:
            slot.release()

    # Called by the flusher, off the request path.
    def flush(self, now: float) -> None:
        with self.lock:
            batch = self.pending
            if batch:
                self.pending = OutcomeBatch(self.config)
        config = self.config
        if batch:
            self._adopt(self.registry.store(lambda b: b.merge(self.key, config, batch, now)), now)
        elif now - self.last_sync >= resilience_settings.SYNC_INTERVAL_S:
            self._adopt(self.registry.store(lambda b: b.read(self.key, config, now)), now)

    def reset(self, reason: str = "reset by an operator") -> SharedState:
        now = self.clock.time()
        config = self.config
        with self.lock:
            self.pending = OutcomeBatch(config)
        shared = self.registry.store(lambda b: b.reset(self.key, config, now, reason))
        self._adopt(shared, now)
        return shared

    def sync(self) -> SharedState:
        """Read the shared state now (API and admin, which show live figures)."""
        now = self.clock.time()
        config = self.config
        shared = self.registry.store(lambda b: b.read(self.key, config, now))
        self._adopt(shared, now)
        return shared

    def _adopt(self, shared: SharedState, now: float) -> None:
        if shared.state != self.state:
            self.probe_denied_until = 0.0
        self.state = shared.state
        self.open_until = shared.open_until
        self.gated = shared.gated
        self.figures = shared.figures
        self.last_sync = now
        if shared.transition is not None:
            self.registry.transition(self, shared.transition, now)

    def drain_minutes(self) -> list[tuple[int, MinuteStats]]:
        with self.lock:
            minutes, self.minutes = self.minutes, {}
        return sorted(minutes.items())

    def restore_minutes(self, minutes: list[tuple[int, MinuteStats]]) -> None:
        with self.lock:
            for minute, stats in minutes:
                current = self.minutes.get(minute)
                if current is None:
                    self.minutes[minute] = stats
                else:
                    current.merge(stats)


class Registry:
    """Every breaker of this process, the store they share (or the local fallback) and the sync thread."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, backend: BreakerBackend | None = None) -> None:
        self.clock = clock
        self._backend = backend
        self.fallback: MemoryBackend | None = None
        self.guard = StoreGuard(HEALTH_COMPONENT, clock=clock,
                                description="shared store (breakers continue per process)")
        self.breakers: dict[tuple[int, str], Breaker] = {}
        self.events: list[tuple[int, str, Transition, float]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._channels: dict[str, Breaker] = {}
        self.history = BreakerHistorySink(self)
        self.process_id = uuid.uuid4().hex[:12]  # this process's name in the gates' in-flight counts
        self.background = True
        self.check_interval_s = 0.0
        # The policy shortcut is timed on the snapshot's clock, so it expires exactly when the snapshot would
        # check the shared version again: a change reaches a breaker within one check interval, not two.
        self._snapshot_monotonic = policy_snapshot.clock.monotonic

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        if hasattr(self, "guard"):
            self.guard.clock = clock

    @property
    def backend(self) -> BreakerBackend:
        if self._backend is None:
            self._backend = get_backend()
        return self._backend

    def get(self, name: str, tenant: Any = None) -> Breaker:
        """The breaker of `name` for `tenant` (a Tenant, its id, or None), on its tenant's current policy."""
        tenant_id = getattr(tenant, "id", tenant) or 0
        breaker = self.breakers.get((tenant_id, name))
        # The shortcut of the hot path: the policy was looked up less than a snapshot interval ago.
        if breaker is not None and self._snapshot_monotonic() - breaker.config_checked_at < self.check_interval_s:
            return breaker
        return self._lookup(name, tenant_id, breaker)

    def _lookup(self, name: str, tenant_id: int, breaker: Breaker | None) -> Breaker:
        self.check_interval_s = core_settings.SNAPSHOT_CHECK_INTERVAL_S
        try:
            config = policy_snapshot.get(tenant_id).breakers.get(name) if tenant_id else None
        except Exception as exc:
            # The policies cannot be read (the database is down, perhaps the very dependency this breaker
            # protects): keep judging with the policy last compiled, or the defaults, and try again later.
            health.mark_degraded(POLICY_HEALTH_COMPONENT, f"policies unreadable ({exc.__class__.__name__})")
            if breaker is not None:
                breaker.config_checked_at = self._snapshot_monotonic()
                return breaker
            config = None
        else:
            health.mark_ok(POLICY_HEALTH_COMPONENT)
        if breaker is None:
            with self._lock:
                breaker = self.breakers.get((tenant_id, name))
                if breaker is None:
                    breaker = Breaker(tenant_id=tenant_id, config=config or BreakerConfig(name=name), registry=self)
                    self.breakers[(tenant_id, name)] = breaker
        elif config is not None and config is not breaker.config:
            breaker.reconfigure(config)
        elif config is None and breaker.config.policy_id is not None:  # its policy was deleted
            breaker.reconfigure(BreakerConfig(name=name))
        breaker.config_checked_at = policy_snapshot.checked_at(tenant_id) if tenant_id else self._snapshot_monotonic()
        if self.background and self._thread is None:  # first breaker, or first lookup in a forked child
            self._start()
        return breaker

    async def aget(self, name: str, tenant: Any = None) -> Breaker:
        """`get` for coroutines: the policy lookup may read the database, so it runs in a thread when due."""
        breaker = self.breakers.get((getattr(tenant, "id", tenant) or 0, name))
        if breaker is not None and self._snapshot_monotonic() - breaker.config_checked_at < self.check_interval_s:
            return breaker
        return await sync_to_async(self.get)(name, tenant)

    def expire_lookups(self, tenant_id: Hashable | None) -> None:
        """Make the next call of a tenant's breakers (every tenant's for None) look its policy up again."""
        for (breaker_tenant, _), breaker in list(self.breakers.items()):
            if tenant_id is None or breaker_tenant == tenant_id:
                breaker.config_checked_at = 0.0

    def retry_config(self, name: str, tenant: Any = None) -> RetryConfig | None:
        tenant_id = getattr(tenant, "id", tenant) or 0
        return policy_snapshot.get(tenant_id).retries.get(name) if tenant_id else None

    def store(self, operation: Callable[[BreakerBackend], Any]) -> Any:
        """Run an operation on the shared store, or on the process-local fallback while the store is down."""
        fallback = self.fallback
        if fallback is None:
            try:
                return operation(self.backend)
            except StoreUnavailable as exc:
                fallback = self._enter_fallback(exc)
        return operation(fallback)

    def _enter_fallback(self, exc: BaseException) -> MemoryBackend:
        with self._lock:
            if self.fallback is None:
                fallback = MemoryBackend()
                for breaker in self.breakers.values():
                    fallback.adopt(breaker.key, SharedState(breaker.state, breaker.open_until))
                self.fallback = fallback
                self.guard.failed(exc)
            return self.fallback

    def _try_leave_fallback(self, now: float) -> None:
        try:
            for breaker in list(self.breakers.values()):
                self._backend_read_into(breaker, now)
        except StoreUnavailable as exc:
            self.guard.failed(exc)
            return
        with self._lock:
            self.fallback = None
        self.guard.succeeded()

    @staticmethod
    def _backend_read_into(breaker: Breaker, now: float) -> None:
        shared = breaker.registry.backend.read(breaker.key, breaker.config, now)
        breaker.state, breaker.open_until, breaker.figures = shared.state, shared.open_until, shared.figures
        breaker.gated = shared.gated
        breaker.last_sync = now

    def transition(self, breaker: Breaker, transition: Transition, now: float) -> None:
        log.info("breaker %s %s -> %s: %s", breaker.key, transition.from_state, transition.to_state, transition.reason)
        with self._lock:
            self.events.append((breaker.tenant_id, breaker.name, transition, now))

    def flush_all(self, *, write_db: bool = True) -> None:
        """Merge every pending batch and sync idle breakers; write events and scorecards when due."""
        now = self.clock.time()
        if self.fallback is not None and self.guard.available():  # one probe per retry interval
            self._try_leave_fallback(now)
        for breaker in list(self.breakers.values()):
            try:
                breaker.flush(now)
            except Exception:
                log.exception("flush of breaker %s failed", breaker.key)
        if write_db:
            self.write_db()

    def write_db(self) -> None:
        """Write transitions and scorecards now (core's stats pipeline does it every interval)."""
        self.history.flush(self.clock.time())

    def wake(self) -> None:
        self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="bulwark-breaker-sync", daemon=True)
            self._thread.start()
        core_stats.pipeline.ensure_started()  # transitions and scorecards go to the database through it
        self.start_listener()

    def start_listener(self) -> None:
        """Follow the transitions the shared store pushes (a backend with `PushesTransitions`), in a thread."""
        backend = self.backend
        if not isinstance(backend, PushesTransitions):
            return
        with self._lock:
            if self._listener is not None:
                return
            self._listener = threading.Thread(target=self._listen, args=(backend,), name="bulwark-breaker-listener",
                                              daemon=True)
            self._listener.start()

    def _listen(self, backend: PushesTransitions) -> None:
        while not self._stopping.is_set():
            try:
                backend.listen(self._pushed, self._stopping)
            except StoreUnavailable:
                self._stopping.wait(resilience_settings.SYNC_INTERVAL_S)  # the store is down: the flusher copes
            except Exception:
                log.exception("breaker transition listener failed; listening again")
                self._stopping.wait(resilience_settings.SYNC_INTERVAL_S)

    def _pushed(self, channel: str, state: str, open_until: float, gated: bool) -> None:
        """Another process's transition: adopt it now rather than at the next sync (its process records the event)."""
        breaker = self._channels.get(channel)
        if breaker is None:
            backend = self.backend
            self._channels = {backend.channel(b.key): b for b in list(self.breakers.values())}
            breaker = self._channels.get(channel)
        if breaker is None or self.fallback is not None:
            return
        if breaker.state != state:
            breaker.probe_denied_until = 0.0
        breaker.state, breaker.open_until, breaker.gated = state, open_until, gated
        breaker._wake_waiters()

    def stop(self) -> None:
        """Stop the flusher thread (tests; a host shutting down cleanly)."""
        threads = [t for t in (self._thread, self._listener) if t is not None]
        if not threads:
            return
        self._stopping.set()
        self._wake.set()
        for thread in threads:
            thread.join(timeout=5)
        self._thread = self._listener = None
        self._stopping.clear()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(resilience_settings.FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self.flush_all(write_db=False)
            except Exception:
                log.exception("breaker flusher failed; retrying at the next interval")


registry = Registry()
core_stats.register("resilience.breakers", registry.history, start=False,
                    interval_alias=(resilience_settings, "SCORECARD_FLUSH_INTERVAL_S"))
policy_snapshot.on_drop.append(registry.expire_lookups)


def _after_fork_in_child() -> None:
    # A forked worker inherits the breakers but not the flusher thread: the next lookup starts its own.
    registry._thread = None
    registry._listener = None
    registry._lock = threading.Lock()
    registry._wake = threading.Event()
    registry._stopping = threading.Event()
    registry.process_id = uuid.uuid4().hex[:12]
    for breaker in registry.breakers.values():
        breaker.lock = threading.Lock()
        breaker._budget_freed = threading.Condition()
        breaker.in_flight = deque()  # the parent's calls in flight are not this process's
        breaker.config_checked_at = 0.0


os.register_at_fork(after_in_child=_after_fork_in_child)


def get_breaker(name: str, tenant: Any = None) -> Breaker:
    return registry.get(name, tenant)
