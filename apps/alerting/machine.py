"""The alert state machine: pure, on injected time (Prometheus' rule semantics).

inactive/resolved --condition--> pending --held for `for_s`--> firing --clear for `keep_firing_for_s`--> resolved
A pending alert whose condition stops goes back to inactive (flapping never fires); a firing alert whose
condition stops keeps firing for `keep_firing_for_s` and comes back to plain firing if the condition returns.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"


@dataclass(frozen=True)
class AlertStatus:
    state: str = INACTIVE
    value: float | None = None
    active_since: datetime | None = None
    fired_at: datetime | None = None
    clear_since: datetime | None = None
    resolved_at: datetime | None = None


def step(status: AlertStatus, *, holds: bool, value: float | None, now: datetime, for_s: int,
         keep_firing_for_s: int) -> AlertStatus:
    """The status after one evaluation. The value is kept only on a transition: an unchanged alert is not
    rewritten, so a cycle writes only the alerts that changed."""
    state = status.state
    if holds:
        if state in (INACTIVE, RESOLVED):
            pending = replace(status, state=PENDING, value=value, active_since=now, clear_since=None,
                              resolved_at=None)
            return _fire(pending, value, now) if for_s == 0 else pending
        if state == PENDING:
            if now - status.active_since >= timedelta(seconds=for_s):
                return _fire(status, value, now)
            return status
        if status.clear_since is not None:  # firing, the condition is back within keep_firing_for
            return replace(status, clear_since=None)
        return status
    if state == PENDING:
        return replace(status, state=INACTIVE, value=value, active_since=None)
    if state == FIRING:
        clear_since = status.clear_since or now
        if now - clear_since >= timedelta(seconds=keep_firing_for_s):
            return replace(status, state=RESOLVED, value=value, clear_since=None, resolved_at=now)
        if status.clear_since is None:
            return replace(status, clear_since=now)
    return status


def _fire(status: AlertStatus, value: float | None, now: datetime) -> AlertStatus:
    return replace(status, state=FIRING, value=value, fired_at=now, clear_since=None)
