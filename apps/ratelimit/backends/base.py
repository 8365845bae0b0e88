"""The backend contract: decide several limits in one atomic step, all or nothing."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apps.core.clock import Clock
from apps.ratelimit.algorithms import Limit, Outcome


@dataclass(frozen=True, slots=True)
class Hit:
    """One limit to decide: its state key, what it allows, how many units the request costs, and whether
    a refusal blocks the request (enforce) or is only counted (shadow)."""

    key: str
    limit: Limit
    cost: int
    enforce: bool


class RateLimitBackend:
    """Subclasses implement `decide` and `reset`.

    `decide(hits)` returns one Outcome per hit, in order, and stores the new state of every allowed hit
    if and only if no enforcing hit was refused: a request that is turned away consumes nothing, so a
    strict policy does not drain a lenient one. A hit of cost 0 (a peek) and a `dry_run` decide the same
    way and store nothing. It raises core's StoreUnavailable when the store is unreachable.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        # The algorithms read `clock.time_us()`; None means the backend's own time source (Redis: the server's).
        self.clock = clock

    def decide(self, hits: Sequence[Hit], *, dry_run: bool = False) -> list[Outcome]:
        raise NotImplementedError

    def reset(self, key: str) -> bool:
        """Forget the state of one key; True when there was one."""
        raise NotImplementedError
