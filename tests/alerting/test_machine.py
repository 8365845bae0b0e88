"""The alert state machine on injected time: for, keep_firing_for, flapping and resolve."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apps.alerting.machine import FIRING, INACTIVE, PENDING, RESOLVED, AlertStatus, step

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def run(status, holds, at_s, for_s=60, keep_s=0, value=1.0):
    return step(status, holds=holds, value=value, now=T0 + timedelta(seconds=at_s), for_s=for_s,
                keep_firing_for_s=keep_s)


def test_condition_must_hold_for_the_whole_for_duration_before_firing():
    s = run(AlertStatus(), True, 0)
    assert s.state == PENDING and s.active_since == T0
    assert run(s, True, 59).state == PENDING
    fired = run(s, True, 60, value=0.3)
    assert fired.state == FIRING and fired.fired_at == T0 + timedelta(seconds=60) and fired.value == 0.3


def test_for_zero_fires_at_once():
    assert run(AlertStatus(), True, 0, for_s=0).state == FIRING


def test_flapping_pending_alert_goes_back_to_inactive_and_starts_over():
    s = run(AlertStatus(), True, 0)
    s = run(s, False, 30)
    assert s.state == INACTIVE and s.active_since is None
    s = run(s, True, 45)
    assert s.state == PENDING and s.active_since == T0 + timedelta(seconds=45)
    assert run(s, True, 90).state == PENDING  # 45 s since it began again, not 90
    assert run(s, True, 105).state == FIRING


def test_firing_alert_resolves_when_the_condition_clears_without_keep_firing_for():
    s = run(run(AlertStatus(), True, 0, for_s=0), False, 15, for_s=0, value=0.0)
    assert s.state == RESOLVED and s.resolved_at == T0 + timedelta(seconds=15) and s.value == 0.0


def test_keep_firing_for_holds_the_alert_and_a_returning_condition_cancels_the_countdown():
    s = run(AlertStatus(), True, 0, for_s=0, keep_s=60)
    s = run(s, False, 15, keep_s=60)
    assert s.state == FIRING and s.clear_since == T0 + timedelta(seconds=15)
    s = run(s, True, 30, keep_s=60)
    assert s.state == FIRING and s.clear_since is None
    s = run(s, False, 45, keep_s=60)
    assert run(s, False, 104, keep_s=60).state == FIRING
    assert run(s, False, 105, keep_s=60).state == RESOLVED


def test_an_unchanged_alert_is_the_same_status_so_nothing_is_written():
    s = run(run(AlertStatus(), True, 0, for_s=0), True, 15, for_s=0, value=9.0)
    assert s == run(AlertStatus(), True, 0, for_s=0)


def test_resolved_alert_that_holds_again_starts_pending():
    s = run(run(AlertStatus(), True, 0, for_s=0), False, 15)
    s = run(s, True, 30)
    assert s.state == PENDING and s.resolved_at is None
