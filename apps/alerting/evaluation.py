"""One evaluation cycle, in memory: read each metric kind once per tenant and window, evaluate every rule
with its precompiled matchers, step each alert's state machine, then group, inhibit, silence and decide
which notifications are due. Only alerts whose stored status changed are written, in bulk, so the number of
statements of a cycle does not grow with the number of rules or label sets."""
from __future__ import annotations

import hashlib
import operator
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q

from apps.alerting import machine
from apps.alerting.conf import alerting_settings
from apps.alerting.matching import Matcher, compile_matchers, render
from apps.alerting.models import Alert, AlertEvent, AlertGroup, AlertRule, AlertState, Notification, Silence
from apps.core import live, metric_kinds

COMPARE: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                      "<=": operator.le}
RESERVED_LABELS = ("alertname", "rule_id", "severity")
WRITE_BATCH = 2000
LIVE_EVENTS_MAX = 20
NO_END = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing
DEFAULT_SUMMARY = "{alertname}: {metric} is {value:.4g} ({comparator} {threshold:.4g})"


@dataclass
class CompiledRule:
    id: int
    name: str
    metric: str
    window_s: int
    matcher: Matcher
    levels: tuple[tuple[str, float], ...]  # (severity, threshold), warning first
    compare: Callable[[float, float], bool]
    comparator: str
    for_s: int
    keep_firing_for_s: int
    group_by: tuple[str, ...]
    group_wait_s: int
    group_interval_s: int
    repeat_interval_s: int
    labels: dict[str, str]
    annotations: dict[str, str]
    channel_ids: list[int] = field(default_factory=list)


_compiled: dict[tuple[int, datetime], CompiledRule] = {}


def _compile(row: dict[str, Any]) -> CompiledRule:
    key = (row["id"], row["updated_at"])
    rule = _compiled.get(key)
    if rule is None:
        levels = tuple((severity, row[severity]) for severity in ("warning", "critical") if row[severity] is not None)
        rule = CompiledRule(
            id=row["id"], name=row["name"], metric=row["metric"], window_s=row["window_s"],
            matcher=compile_matchers(row["matchers"]), levels=levels, compare=COMPARE[row["comparator"]],
            comparator=row["comparator"], for_s=row["for_s"], keep_firing_for_s=row["keep_firing_for_s"],
            group_by=tuple(row["group_by"]), group_wait_s=row["group_wait_s"],
            group_interval_s=row["group_interval_s"], repeat_interval_s=row["repeat_interval_s"],
            labels=row["labels"], annotations=row["annotations"])
        if len(_compiled) > 50_000:
            _compiled.clear()
        _compiled[key] = rule
    return replace(rule, channel_ids=[])


RULE_FIELDS = ("id", "name", "metric", "window_s", "matchers", "warning", "critical", "comparator", "for_s",
               "keep_firing_for_s", "group_by", "group_wait_s", "group_interval_s", "repeat_interval_s", "labels",
               "annotations", "updated_at")
ALERT_FIELDS = ("id", "rule_id", "fingerprint", "labels", "severity", "state", "value", "active_since", "fired_at",
                "clear_since", "resolved_at", "changed_at", "notified_state", "acknowledged_at", "acknowledged_by")
STATUS_FIELDS = ("state", "value", "active_since", "fired_at", "clear_since", "resolved_at")


def fingerprint(rule_id: int, severity: str, scope_key: str) -> str:
    return hashlib.blake2b(f"{rule_id}|{severity}|{scope_key}".encode(), digest_size=16).hexdigest()


def scope_key(labels: dict[str, str]) -> str:
    return "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items()))


@dataclass
class AlertRow:
    """An alert as the cycle sees it: the stored row (or a new one) and its status after this cycle."""

    rule_id: int
    fingerprint: str
    labels: dict[str, str]
    severity: str
    status: machine.AlertStatus
    id: int | None = None
    changed_at: datetime | None = None
    notified_state: str = ""
    acknowledged_at: datetime | None = None
    acknowledged_by: str = ""
    current_value: float | None = None
    dirty: bool = False
    previous_state: str = machine.INACTIVE

    @classmethod
    def of(cls, row: dict[str, Any]) -> AlertRow:
        status = machine.AlertStatus(**{name: row[name] for name in STATUS_FIELDS})
        return cls(rule_id=row["rule_id"], fingerprint=row["fingerprint"], labels=row["labels"],
                   severity=row["severity"], status=status, id=row["id"], changed_at=row["changed_at"],
                   notified_state=row["notified_state"], acknowledged_at=row["acknowledged_at"],
                   acknowledged_by=row["acknowledged_by"], previous_state=row["state"])


@dataclass
class CycleResult:
    rules: int = 0
    alerts_evaluated: int = 0
    transitions: int = 0
    notifications: int = 0
    deliveries: int = 0


def _load_rules(tenant_id: int) -> dict[int, CompiledRule]:
    rules = {row["id"]: _compile(row)
             for row in AlertRule.objects.filter(tenant_id=tenant_id, enabled=True).values(*RULE_FIELDS)}
    if rules:
        links = AlertRule.channels.through.objects.filter(alertrule__tenant_id=tenant_id, alertrule__enabled=True)
        for rule_id, channel_id in links.values_list("alertrule_id", "channel_id"):
            rules[rule_id].channel_ids.append(channel_id)
    return rules


def _load_alerts(tenant_id: int) -> dict[str, AlertRow]:
    """The alerts that can change or still owe a notification: pending, firing, resolved but not yet notified."""
    live_rows = Alert.objects.filter(tenant_id=tenant_id).filter(
        Q(state__in=(AlertState.PENDING, AlertState.FIRING))
        | Q(state=AlertState.RESOLVED, notified_state=AlertState.FIRING))
    return {row["fingerprint"]: AlertRow.of(row) for row in live_rows.values(*ALERT_FIELDS)}


def _read(rules: dict[int, CompiledRule], tenant_id: int, now: datetime) -> dict[tuple[str, int], list]:
    """Each (metric, window) once: [(scope labels, scope key, value)]."""
    readings = {}
    for metric, window_s in {(rule.metric, rule.window_s) for rule in rules.values()}:
        kind = metric_kinds.get(metric)
        found = kind.read(tenant_id, window_s, now) if kind is not None else []
        readings[(metric, window_s)] = [(labels, scope_key(labels), value) for labels, value in found]
    return readings


def _alert_labels(rule: CompiledRule, scope: dict[str, str], severity: str) -> dict[str, str]:
    """The scope's labels and the alert's own win over a rule's (validation refuses such rule labels; a row
    saved around it must still not make an alert claim another route or severity)."""
    return {**rule.labels, **scope, "alertname": rule.name, "rule_id": str(rule.id), "severity": severity}


def _step_all(rules, alerts: dict[str, AlertRow], readings, now: datetime) -> int:
    """Step every alert a rule's readings touch, and every loaded alert none touched (its condition is gone)."""
    seen = set()
    evaluated = 0
    with_alerts = {row.rule_id for row in alerts.values()}
    for rule in rules.values():
        rule_has_alerts = rule.id in with_alerts
        for scope, key, value in readings[(rule.metric, rule.window_s)]:
            if not rule.matcher(scope):
                continue
            for severity, threshold in rule.levels:
                holds = rule.compare(value, threshold)
                if not holds and not rule_has_alerts:
                    continue  # nothing stored can change: the common case, kept cheap
                fp = fingerprint(rule.id, severity, key)
                row = alerts.get(fp)
                if row is None:
                    if not holds:
                        continue
                    row = alerts[fp] = AlertRow(rule_id=rule.id, fingerprint=fp, severity=severity,
                                                labels=_alert_labels(rule, scope, severity), status=machine.AlertStatus())
                evaluated += 1
                seen.add(fp)
                row.current_value = value
                _apply(row, machine.step(row.status, holds=holds, value=value, now=now, for_s=rule.for_s,
                                         keep_firing_for_s=rule.keep_firing_for_s), now)
    for fp, row in alerts.items():
        if fp in seen or row.status.state not in (machine.PENDING, machine.FIRING):
            continue
        rule = rules.get(row.rule_id)
        keep_s = rule.keep_firing_for_s if rule is not None else 0  # a disabled rule's alerts resolve now
        evaluated += 1
        _apply(row, machine.step(row.status, holds=False, value=None, now=now, for_s=0, keep_firing_for_s=keep_s), now)
    return evaluated


def _apply(row: AlertRow, status: machine.AlertStatus, now: datetime) -> None:
    if status == row.status:
        return
    if status.state != row.status.state:
        row.changed_at = now
        row.acknowledged_at, row.acknowledged_by = None, ""  # an acknowledgement lasts until the state changes
        if status.state == machine.INACTIVE and row.notified_state != machine.FIRING:
            row.notified_state = ""
    row.status = status
    row.dirty = True


def _write(tenant_id: int, alerts: dict[str, AlertRow], now: datetime) -> list[AlertRow]:
    """Upsert the changed alerts (one statement per batch) and append their transitions to the history."""
    dirty = [row for row in alerts.values() if row.dirty]
    if not dirty:
        return []
    objects = [Alert(id=row.id, tenant_id=tenant_id, rule_id=row.rule_id, fingerprint=row.fingerprint,
                     labels=row.labels, severity=row.severity, changed_at=row.changed_at or now,
                     notified_state=row.notified_state, acknowledged_at=row.acknowledged_at,
                     acknowledged_by=row.acknowledged_by,
                     **{name: getattr(row.status, name) for name in STATUS_FIELDS}) for row in dirty]
    update_fields = [*STATUS_FIELDS, "labels", "changed_at", "notified_state", "acknowledged_at", "acknowledged_by"]
    Alert.objects.bulk_create(objects, batch_size=WRITE_BATCH, update_conflicts=True,
                              unique_fields=["rule", "fingerprint"], update_fields=update_fields)
    events = []
    transitioned = []
    for row, obj in zip(dirty, objects, strict=True):
        row.id = obj.pk
        if row.status.state != row.previous_state:
            transitioned.append(row)
            events.append(AlertEvent(tenant_id=tenant_id, alert_id=obj.pk, at=now, from_state=row.previous_state,
                                     to_state=row.status.state, value=row.status.value))
    AlertEvent.objects.bulk_create(events, batch_size=WRITE_BATCH)
    return transitioned


def _publish_transitions(tenant_id: int, rows: list[AlertRow]) -> None:
    """One live event per alert that fired or resolved; a burst beyond LIVE_EVENTS_MAX (a bad deploy firing
    thousands) is one event per state carrying the count and the first alerts, so the console is not flooded
    and the cycle does not spend seconds publishing."""
    for state in (machine.FIRING, machine.RESOLVED):
        changed = [_event_data(row) for row in rows if row.status.state == state]
        if len(changed) > LIVE_EVENTS_MAX:
            live.publish(tenant_id, f"alert.{state}", {"count": len(changed), "truncated": True,
                                                       "alerts": changed[:LIVE_EVENTS_MAX]})
            continue
        for data in changed:
            live.publish(tenant_id, f"alert.{state}", data)


def _event_data(row: AlertRow) -> dict[str, Any]:
    return {"alert": row.id, "rule": row.rule_id, "alertname": row.labels.get("alertname"), "severity": row.severity,
            "labels": row.labels, "value": row.status.value}


# --- notifications -----------------------------------------------------------------------------------

def _scope_without_severity(row: AlertRow) -> tuple:
    return (row.rule_id, tuple(sorted((k, v) for k, v in row.labels.items() if k != "severity")))


def _active_silences(tenant_id: int, now: datetime) -> list[Matcher]:
    return [compile_matchers(matchers) for matchers in
            Silence.objects.filter(tenant_id=tenant_id, starts_at__lte=now, ends_at__gt=now)
            .values_list("matchers", flat=True)]


def notifiable(rows: list[AlertRow], silences: list[Matcher]) -> list[AlertRow]:
    """Firing alerts that are neither silenced nor inhibited (critical inhibits warning of the same rule and
    labels), and resolved alerts whose firing was notified."""
    critical = {_scope_without_severity(row) for row in rows
                if row.status.state == machine.FIRING and row.severity == "critical"}
    chosen = []
    for row in rows:
        state = row.status.state
        if state == machine.FIRING:
            if row.severity == "warning" and _scope_without_severity(row) in critical:
                continue
        elif not (state == machine.RESOLVED and row.notified_state == machine.FIRING):
            continue
        if any(silenced(row.labels) for silenced in silences):
            continue
        chosen.append(row)
    return chosen


def group_key(rule: CompiledRule, labels: dict[str, str]) -> str:
    values = "\x1f".join(f"{name}\x1e{labels.get(name, '')}" for name in rule.group_by)
    return hashlib.blake2b(f"{rule.id}|{values}".encode(), digest_size=16).hexdigest()


def group_due(*, rule: CompiledRule, group: AlertGroup | None, firing: list[AlertRow], resolved: list[AlertRow],
              now: datetime) -> bool:
    """Alertmanager's timers: a new group waits group_wait; a change waits group_interval after the last
    notification; an unchanged group repeats after repeat_interval unless every alert in it is acknowledged."""
    if not firing and not resolved:
        return False
    last_firing = set(group.last_firing) if group is not None else set()
    if group is None or group.last_notified_at is None or not last_firing:
        if not firing:
            return True
        first = min(row.status.fired_at or now for row in firing)
        return now >= first + timedelta(seconds=rule.group_wait_s)
    since_last = now - group.last_notified_at
    if resolved or {row.fingerprint for row in firing} != last_firing:
        return since_last >= timedelta(seconds=rule.group_interval_s)
    unacknowledged = any(row.acknowledged_at is None for row in firing)
    return unacknowledged and since_last >= timedelta(seconds=rule.repeat_interval_s)


def _annotations(rule: CompiledRule, row: AlertRow) -> dict[str, str]:
    threshold = dict(rule.levels).get(row.severity)
    value = row.current_value if row.current_value is not None else row.status.value
    values = {**row.labels, "value": value if value is not None else float("nan"), "threshold": threshold,
              "metric": rule.metric, "comparator": rule.comparator}
    templates = rule.annotations or {"summary": DEFAULT_SUMMARY}
    return {name: render(text, values) for name, text in templates.items()}


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else NO_END


def payload_of(rule: CompiledRule, rows: list[AlertRow], group_labels: dict[str, str]) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4); `receiver` is the channel's name, set when sending."""
    external = alerting_settings.EXTERNAL_URL.rstrip("/")
    alerts = [{
        "status": "firing" if row.status.state == machine.FIRING else "resolved",
        "labels": row.labels,
        "annotations": _annotations(rule, row),
        "startsAt": _iso(row.status.fired_at),
        "endsAt": _iso(row.status.resolved_at) if row.status.state == machine.RESOLVED else NO_END,
        "generatorURL": f"{external}/admin/bulwark_alerting/alertrule/{rule.id}/change/" if external else "",
        "fingerprint": row.fingerprint,
    } for row in rows]
    common_labels = dict(set.intersection(*(set(a["labels"].items()) for a in alerts)))
    common_annotations = dict(set.intersection(*(set(a["annotations"].items()) for a in alerts)))
    return {
        "version": "4",
        "groupKey": f"{{}}:{{rule_id=\"{rule.id}\"," + ",".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}",
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "",
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": external,
        "alerts": alerts,
    }


def _notify(tenant_id: int, rules: dict[int, CompiledRule], alerts: dict[str, AlertRow], now: datetime) -> tuple[int, int]:
    candidates = [row for row in alerts.values()
                  if row.status.state == machine.FIRING
                  or (row.status.state == machine.RESOLVED and row.notified_state == machine.FIRING)]
    if not candidates:
        return 0, 0
    chosen = notifiable(candidates, _active_silences(tenant_id, now))
    by_group: dict[tuple[int, str], list[AlertRow]] = defaultdict(list)
    for row in chosen:
        rule = rules.get(row.rule_id)
        if rule is not None:
            by_group[(rule.id, group_key(rule, row.labels))].append(row)
    if not by_group:
        return 0, 0
    groups = {(g.rule_id, g.key): g for g in AlertGroup.objects.filter(tenant_id=tenant_id)}
    due = []
    for (rule_id, key), rows in by_group.items():
        rule = rules[rule_id]
        firing = [row for row in rows if row.status.state == machine.FIRING]
        resolved = [row for row in rows if row.status.state == machine.RESOLVED]
        if group_due(rule=rule, group=groups.get((rule_id, key)), firing=firing, resolved=resolved, now=now):
            due.append((rule, key, sorted(rows, key=lambda r: r.fingerprint), firing))
    if not due:
        return 0, 0
    notifications, group_rows = [], []
    for rule, key, rows, firing in due:
        group_labels = {"alertname": rule.name, **{name: rows[0].labels.get(name, "") for name in rule.group_by}}
        payload = payload_of(rule, rows, group_labels)
        notifications.append(Notification(tenant_id=tenant_id, rule_id=rule.id, alert_id=rows[0].id,
                                          status=payload["status"], payload=payload, created_at=now))
        group_rows.append(AlertGroup(tenant_id=tenant_id, rule_id=rule.id, key=key, labels=group_labels,
                                     last_notified_at=now, last_firing=sorted(row.fingerprint for row in firing)))
    Notification.objects.bulk_create(notifications, batch_size=WRITE_BATCH)
    AlertGroup.objects.bulk_create(group_rows, batch_size=WRITE_BATCH, update_conflicts=True,
                                   unique_fields=["rule", "key"], update_fields=["labels", "last_notified_at",
                                                                                 "last_firing"])
    for state in (machine.FIRING, machine.RESOLVED):
        ids = [row.id for _r, _k, rows, _f in due for row in rows if row.status.state == state]
        if ids:
            Alert.objects.filter(pk__in=ids).update(notified_state=state)
    deliveries = [(notification.pk, channel_id) for notification, (rule, *_rest) in zip(notifications, due, strict=True)
                  for channel_id in rule.channel_ids]
    if deliveries:
        from apps.alerting.services import deliveries_submit

        deliveries_submit(tenant_id=tenant_id, pairs=deliveries)
    return len(notifications), len(deliveries)


@transaction.atomic
def evaluate_tenant(*, tenant_id: int, now: datetime) -> CycleResult:
    rules = _load_rules(tenant_id)
    alerts = _load_alerts(tenant_id)
    if not rules and not alerts:
        return CycleResult()
    readings = _read(rules, tenant_id, now)
    evaluated = _step_all(rules, alerts, readings, now)
    transitioned = _write(tenant_id, alerts, now)
    notifications, deliveries = _notify(tenant_id, rules, alerts, now)
    if transitioned:
        transaction.on_commit(lambda: _publish_transitions(tenant_id, transitioned))
    return CycleResult(rules=len(rules), alerts_evaluated=evaluated, transitions=len(transitioned),
                       notifications=notifications, deliveries=deliveries)


def tenants_to_evaluate() -> list[int]:
    with_rules = AlertRule.objects.filter(enabled=True).values_list("tenant_id", flat=True)
    with_alerts = Alert.objects.filter(state__in=(AlertState.PENDING, AlertState.FIRING)).values_list(
        "tenant_id", flat=True)
    return sorted(set(with_rules.union(with_alerts)))


def evaluate_all(*, now: datetime) -> CycleResult:
    total = CycleResult()
    for tenant_id in tenants_to_evaluate():
        result = evaluate_tenant(tenant_id=tenant_id, now=now)
        for name in ("rules", "alerts_evaluated", "transitions", "notifications", "deliveries"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
    return total
