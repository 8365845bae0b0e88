"""The evaluation cycle on a fake clock: alerts, dedup, history, grouping timers, inhibition, silences,
acknowledge and repeat, resolved notifications, and statements that do not grow with the rules."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.alerting import services
from apps.alerting.evaluation import evaluate_tenant
from apps.alerting.models import Alert, AlertEvent, AlertGroup, Notification
from apps.jobs.models import JobRun
from tests.alerting.conftest import TEST_METRIC
from tests.alerting.factories import AlertRuleFactory, ChannelFactory

pytestmark = pytest.mark.django_db


_names = itertools.count()


def rule(tenant, **kwargs):
    data = {"name": f"rule {next(_names)}", "metric": TEST_METRIC, "warning": 0.02, "critical": 0.05, "for_s": 30, "group_wait_s": 10,
            "group_interval_s": 60, "repeat_interval_s": 3600, **kwargs}
    return services.rule_create(tenant=tenant, data=data)


def cycle(tenant, clock, advance_s=15):
    result = evaluate_tenant(tenant_id=tenant.pk, now=clock.now())
    clock.advance(advance_s)
    return result


def notifications(tenant):
    return list(Notification.objects.for_tenant(tenant).order_by("created_at", "pk"))


def test_a_stored_rule_whose_labels_collide_never_overrides_the_scope_or_the_alerts_own_labels(tenant_a, readings,
                                                                                                 clock):
    """Validation refuses such labels; a row saved before it (or behind it) still cannot relabel an alert."""
    r = rule(tenant_a, critical=None, for_s=0)
    r.labels = {"route": "api/other", "severity": "page", "alertname": "x", "rule_id": "0", "team": "web"}
    r.save()  # no full_clean: as a row saved before the validation
    readings.set(tenant_a, [({"route": "api/x"}, 0.03)])
    cycle(tenant_a, clock)
    assert Alert.objects.get(rule=r).labels == {"route": "api/x", "team": "web", "alertname": r.name,
                                                "rule_id": str(r.pk), "severity": "warning"}


def test_pending_then_firing_after_for_with_history_and_the_driving_values(tenant_a, readings, clock):
    r = rule(tenant_a, critical=None)
    readings.set(tenant_a, [({"route": "api/x"}, 0.03)])
    cycle(tenant_a, clock)
    alert = Alert.objects.get(rule=r)
    assert alert.state == "pending" and alert.value == 0.03
    readings.set(tenant_a, [({"route": "api/x"}, 0.04)])
    cycle(tenant_a, clock)
    assert Alert.objects.get(rule=r).state == "pending"
    cycle(tenant_a, clock)  # 30 s after it began
    alert.refresh_from_db()
    assert alert.state == "firing" and alert.value == 0.04
    assert alert.labels == {"route": "api/x", "alertname": r.name, "rule_id": str(r.pk), "severity": "warning"}
    readings.set(tenant_a, [({"route": "api/x"}, 0.0)])
    cycle(tenant_a, clock)
    alert.refresh_from_db()
    assert alert.state == "resolved"
    history = list(AlertEvent.objects.filter(alert=alert).order_by("at").values_list("from_state", "to_state", "value"))
    assert history == [("inactive", "pending", 0.03), ("pending", "firing", 0.04), ("firing", "resolved", 0.0)]


def test_one_alert_per_rule_and_label_set_with_a_stable_fingerprint(tenant_a, readings, clock):
    r = rule(tenant_a, for_s=0, critical=None)
    readings.set(tenant_a, [({"route": "a"}, 0.5), ({"route": "b"}, 0.5)])
    for _ in range(3):
        cycle(tenant_a, clock)
    assert Alert.objects.filter(rule=r).count() == 2
    fingerprints = set(Alert.objects.values_list("fingerprint", flat=True))
    readings.set(tenant_a, [])
    cycle(tenant_a, clock)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    cycle(tenant_a, clock)
    assert Alert.objects.filter(rule=r).count() == 2  # the same row fires again, not a new one
    assert Alert.objects.get(labels__route="a").fingerprint in fingerprints
    assert Alert.objects.get(labels__route="a").state == "firing"


def test_matchers_pick_label_sets_exactly_or_by_re2_pattern(tenant_a, readings, clock):
    exact = rule(tenant_a, name="exact", for_s=0, critical=None, matchers={"route": "api/v1/x"})
    pattern = rule(tenant_a, name="pattern", for_s=0, critical=None, matchers={"route": "=~api/v1/.*"})
    negated = rule(tenant_a, name="negated", for_s=0, critical=None, matchers={"route": "!~api/.*"})
    readings.set(tenant_a, [({"route": "api/v1/x"}, 0.5), ({"route": "api/v1/y"}, 0.5), ({"route": "admin"}, 0.5)])
    cycle(tenant_a, clock)
    routes = {r.name: sorted(Alert.objects.filter(rule=r).values_list("labels__route", flat=True))
              for r in (exact, pattern, negated)}
    assert routes == {"exact": ["api/v1/x"], "pattern": ["api/v1/x", "api/v1/y"], "negated": ["admin"]}


def test_unchanged_cycles_write_nothing(tenant_a, readings, clock):
    rule(tenant_a, for_s=0, group_wait_s=0)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    cycle(tenant_a, clock)
    with CaptureQueriesContext(connection) as queries:
        cycle(tenant_a, clock)
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []


def test_statements_per_cycle_do_not_grow_with_rules_or_label_sets(tenant_a, readings, clock):
    def statements(n_rules, n_labels):
        for i in range(n_rules):
            rule(tenant_a, name=f"r{n_rules}-{i}", for_s=0, matchers={"route": "=~r.*"}, warning=0.5, critical=None)
        readings.set(tenant_a, [({"route": f"r{j}"}, 0.9) for j in range(n_labels)])
        cycle(tenant_a, clock)  # creates the alerts
        readings.set(tenant_a, [({"route": f"r{j}"}, 0.1) for j in range(n_labels)])
        with CaptureQueriesContext(connection) as queries:
            cycle(tenant_a, clock)  # resolves every one of them
        return len(queries.captured_queries), Alert.objects.filter(state="resolved").count()

    small, resolved_small = statements(2, 3)
    from apps.alerting.models import AlertRule

    AlertRule.objects.all().delete()
    large, resolved_large = statements(40, 30)
    assert (resolved_small, resolved_large) == (6, 1200)
    assert large == small
    assert readings.reads == 4  # one read per cycle, however many rules


def test_critical_inhibits_warning_of_the_same_rule_and_labels(tenant_a, readings, clock):
    r = rule(tenant_a, for_s=0, group_wait_s=0)
    r.channels.add(ChannelFactory(tenant=tenant_a))
    readings.set(tenant_a, [({"route": "a"}, 0.9), ({"route": "b"}, 0.03)])
    cycle(tenant_a, clock)
    assert Alert.objects.filter(rule=r, state="firing").count() == 3  # a: warning+critical, b: warning
    (sent,) = notifications(tenant_a)
    carried = sorted((a["labels"]["route"], a["labels"]["severity"]) for a in sent.payload["alerts"])
    assert carried == [("a", "critical"), ("b", "warning")]
    assert JobRun.objects.filter(type="alerting.deliver").count() == 1


def test_group_wait_then_group_interval_batch_new_alerts_of_a_group(tenant_a, readings, clock):
    r = rule(tenant_a, for_s=0, critical=None, group_wait_s=20, group_interval_s=60)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    cycle(tenant_a, clock, 10)
    assert notifications(tenant_a) == []  # waiting for group_wait
    readings.set(tenant_a, [({"route": "a"}, 0.5), ({"route": "b"}, 0.5)])
    cycle(tenant_a, clock, 10)
    assert notifications(tenant_a) == []
    cycle(tenant_a, clock, 10)  # 20 s after the first alert fired: one message with both
    (first,) = notifications(tenant_a)
    assert sorted(a["labels"]["route"] for a in first.payload["alerts"]) == ["a", "b"]
    readings.set(tenant_a, [({"route": s}, 0.5) for s in "abc"])
    for _ in range(5):
        cycle(tenant_a, clock, 10)  # up to 50 s after the first message
    assert len(notifications(tenant_a)) == 1
    cycle(tenant_a, clock, 10)  # 60 s: group_interval
    assert len(notifications(tenant_a)) == 2
    assert len(notifications(tenant_a)[1].payload["alerts"]) == 3
    group = AlertGroup.objects.get(rule=r)
    assert len(group.last_firing) == 3


def test_group_by_splits_notifications(tenant_a, readings, clock):
    rule(tenant_a, for_s=0, critical=None, group_wait_s=0, group_by=["route"])
    readings.set(tenant_a, [({"route": "a"}, 0.5), ({"route": "b"}, 0.5)])
    cycle(tenant_a, clock)
    sent = notifications(tenant_a)
    assert sorted(n.payload["groupLabels"]["route"] for n in sent) == ["a", "b"]


def test_repeat_after_repeat_interval_unless_acknowledged(tenant_a, readings, clock):
    r = rule(tenant_a, for_s=0, critical=None, group_wait_s=0, repeat_interval_s=120)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    cycle(tenant_a, clock, 60)
    cycle(tenant_a, clock, 60)
    assert len(notifications(tenant_a)) == 1
    cycle(tenant_a, clock, 60)  # 120 s
    assert len(notifications(tenant_a)) == 2
    services.acknowledge_alert(alert=Alert.objects.get(rule=r))
    for _ in range(4):
        cycle(tenant_a, clock, 60)
    assert len(notifications(tenant_a)) == 2  # acknowledged: no repeats
    readings.set(tenant_a, [({"route": "a"}, 0.0)])
    cycle(tenant_a, clock, 60)
    alert = Alert.objects.get(rule=r)
    assert alert.state == "resolved" and alert.acknowledged_at is None  # the acknowledgement ends with the state
    assert notifications(tenant_a)[-1].status == "resolved"


def test_resolved_notification_goes_out_once_when_it_clears(tenant_a, readings, clock):
    rule(tenant_a, for_s=0, critical=None, group_wait_s=0, group_interval_s=30)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    cycle(tenant_a, clock, 30)
    readings.set(tenant_a, [])
    for _ in range(3):
        cycle(tenant_a, clock, 30)
    sent = notifications(tenant_a)
    assert [n.status for n in sent] == ["firing", "resolved"]
    (resolved_alert,) = sent[1].payload["alerts"]
    assert resolved_alert["status"] == "resolved" and resolved_alert["endsAt"] != "0001-01-01T00:00:00Z"


def test_silence_holds_back_matching_alerts_until_it_expires(tenant_a, readings, clock):
    r = rule(tenant_a, for_s=0, critical=None, group_wait_s=0)
    silence = services.silence_create(tenant=tenant_a, data={
        "matchers": {"alertname": r.name, "route": "=~a.*"}, "starts_at": clock.now() - timedelta(seconds=1),
        "ends_at": clock.now() + timedelta(seconds=60)})
    readings.set(tenant_a, [({"route": "api"}, 0.5), ({"route": "web"}, 0.5)])
    cycle(tenant_a, clock, 30)
    (sent,) = notifications(tenant_a)
    assert [a["labels"]["route"] for a in sent.payload["alerts"]] == ["web"]
    services.silence_expire(silence=silence, now=clock.now())
    cycle(tenant_a, clock, 400)  # group_interval later: the formerly silenced alert joins
    cycle(tenant_a, clock, 30)
    assert sorted(a["labels"]["route"] for a in notifications(tenant_a)[-1].payload["alerts"]) == ["api", "web"]


def test_silence_ends_by_itself_at_ends_at(tenant_a, readings, clock):
    r = rule(tenant_a, for_s=0, critical=None, group_wait_s=0)
    services.silence_create(tenant=tenant_a, data={"matchers": {"alertname": r.name},
                                                   "starts_at": clock.now(), "ends_at": clock.now() + timedelta(seconds=40)})
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    cycle(tenant_a, clock, 30)
    assert notifications(tenant_a) == []
    cycle(tenant_a, clock, 30)  # 30 s: still silenced
    assert notifications(tenant_a) == []
    cycle(tenant_a, clock, 30)  # 60 s: the silence ended at 40 s
    assert len(notifications(tenant_a)) == 1


def test_disabled_rule_resolves_its_alerts(tenant_a, readings, clock):
    r = rule(tenant_a, for_s=0, critical=None)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    cycle(tenant_a, clock)
    services.rule_update(rule=r, data={"enabled": False})
    cycle(tenant_a, clock)
    assert Alert.objects.get(rule=r).state == "resolved"


def test_tenants_are_evaluated_apart(tenant_a, tenant_b, readings, clock):
    rule(tenant_a, name="same", for_s=0, critical=None)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    readings.set(tenant_b, [({"route": "a"}, 0.5)])
    evaluate_tenant(tenant_id=tenant_b.pk, now=clock.now())
    evaluate_tenant(tenant_id=tenant_a.pk, now=clock.now())
    assert Alert.objects.for_tenant(tenant_b).count() == 0
    assert Alert.objects.for_tenant(tenant_a).count() == 1


def test_factory_rule_on_a_registered_kind_evaluates(tenant_a, readings, clock):
    AlertRuleFactory(tenant=tenant_a, metric=TEST_METRIC, for_s=0)
    readings.set(tenant_a, [({"route": "a"}, 0.06)])
    cycle(tenant_a, clock)
    assert sorted(Alert.objects.values_list("severity", flat=True)) == ["critical", "warning"]


def test_evaluation_loop_runs_a_cycle_every_interval(tenant_a, readings):
    from apps.alerting.jobs import evaluation_loop
    from apps.core.clock import FakeClock

    rule(tenant_a, for_s=0, critical=None)
    loop_clock = FakeClock(time=1_700_000_007.0)
    results = evaluation_loop(cycles=3, every_s=15, clock=loop_clock)
    assert len(results) == 3 and readings.reads == 3
    # Stamped on the ticks of wall time: the first with the tick just passed, the others slept until due.
    assert [r["at"] for r in results] == [1_699_999_995.0, 1_700_000_010.0, 1_700_000_025.0]
    assert loop_clock.time() == 1_700_000_025.0


def test_a_run_starting_out_of_phase_does_not_put_off_firing_by_an_interval(tenant_a, readings):
    from apps.alerting.jobs import evaluation_loop
    from apps.core.clock import FakeClock

    rule(tenant_a, for_s=5, critical=None)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    clock = FakeClock(time=1_700_000_002.0)
    assert evaluation_loop(cycles=1, every_s=5, clock=clock)[0]["transitions"] == 1  # pending, as of ...000
    clock.advance(4.0)  # the next run (a job each minute) starts 4 s later, out of phase with the first
    # As of its tick (...005) the alert has been pending for 5 s and fires; stamped with the two runs' start
    # times (...002 and ...006, 4 s apart) it would wait one more interval.
    results = evaluation_loop(cycles=1, every_s=5, clock=clock)
    assert results[0]["at"] == 1_700_000_005.0 and results[0]["transitions"] == 1
    assert Alert.objects.for_tenant(tenant_a).get().state == "firing"


def test_an_overrunning_cycle_starts_the_next_at_once_on_the_latest_tick():
    from apps.alerting.jobs import evaluation_ticks
    from apps.core.clock import FakeClock

    clock = FakeClock(time=1_700_000_000.0)
    ticks = evaluation_ticks(every_s=5, clock=clock)
    assert next(ticks) == 1_700_000_000.0
    clock.advance(12.0)  # the cycle took 12 s
    assert next(ticks) == 1_700_000_010.0 and clock.time() == 1_700_000_012.0
    assert next(ticks) == 1_700_000_015.0 and clock.time() == 1_700_000_015.0


def test_evaluate_job_runs_once_per_minute_however_many_tenant_runs(tenant_a, tenant_b, readings, settings,
                                                                   run_attempt):
    from apps.jobs.services import job_submit

    settings.BULWARK = {**settings.BULWARK, "ALERTING": {"EVALUATE_EVERY_S": 60}}  # one cycle, no waiting
    rule(tenant_a, for_s=0, critical=None)
    readings.set(tenant_a, [({"route": "a"}, 0.5)])
    first = run_attempt(job_submit(job_type="alerting.evaluate", params={}, tenant=tenant_a))
    second = run_attempt(job_submit(job_type="alerting.evaluate", params={}, tenant=tenant_b))
    assert first.status == second.status == "succeeded"
    assert first.result["cycles"] == 1 and second.result == {"skipped": True}
    assert Alert.objects.for_tenant(tenant_a).get().state == "firing"
