"""Alerting at scale: 1,000 rules × 50 label sets evaluated per cycle, on PostgreSQL.

Prints the time and the database statements of each cycle (steady, a burst of transitions, steady firing,
everything resolving), first with 100 rules and then with 1,000 side by side: time should stay well under
EVALUATE_EVERY_S and the statements should not grow with the number of rules.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/alerting_scale.py [--rules 1000] [--labels 50]
"""
from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from ratelimit_harness import setup_django

TENANT = "bench-alerting-scale"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--labels", type=int, default=50)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.alerting import services
    from apps.alerting.conf import alerting_settings
    from apps.alerting.evaluation import evaluate_tenant
    from apps.alerting.models import Alert, AlertGroup, AlertRule, Notification
    from apps.core import metric_kinds
    from apps.tenancy.models import Tenant

    values: dict[str, float] = {}
    metric_kinds.register(metric_kinds.MetricKind(
        "bench_metric", "fraction", ("route",), "benchmark figure",
        lambda tenant_id, window_s, now: [({"route": route}, value) for route, value in values.items()]))

    def prepare(n_rules: int) -> Tenant:
        tenant, _ = Tenant.objects.get_or_create(slug=f"{TENANT}-{n_rules}", defaults={"name": "alerting scale"})
        have = AlertRule.objects.for_tenant(tenant).count()
        for i in range(have, n_rules):
            # A mix of matchers: everything, an RE2 pattern, an exact route.
            matchers = [{}, {"route": "=~api/v1/r[0-4].*"}, {"route": "api/v1/r7"}][i % 3]
            services.rule_create(tenant=tenant, data={
                "name": f"rule {i}", "metric": "bench_metric", "matchers": matchers, "warning": 0.02,
                "critical": 0.05, "for_s": 0, "group_wait_s": 10})
        for model in (Alert, AlertGroup, Notification):  # a fresh start: the previous run's groups would hold back
            model.objects.for_tenant(tenant).delete()
        return tenant

    def run(n_rules: int) -> list[tuple[str, float, int, int]]:
        tenant = prepare(n_rules)
        now = datetime(2027, 1, 1, tzinfo=UTC)
        phases = [("steady, nothing crosses", 0.0), ("burst: 10% of label sets cross", None),
                  ("group_wait over: notify", None), ("steady, firing", None), ("all resolve", 0.0)]
        rows = []
        for name, level in phases:
            for j in range(args.labels):
                values[f"api/v1/r{j}"] = level if level is not None else (0.06 if j % 10 == 0 else 0.0)
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                result = evaluate_tenant(tenant_id=tenant.pk, now=now)
                seconds = time.perf_counter() - started
            rows.append((name, seconds, len(queries.captured_queries), result.transitions, result.notifications))
            now += timedelta(seconds=alerting_settings.EVALUATE_EVERY_S)
        return rows

    results = {n: run(n) for n in (max(1, args.rules // 10), args.rules)}
    small, large = results
    print(f"alerting scale: {args.labels} label sets per rule, EVALUATE_EVERY_S={alerting_settings.EVALUATE_EVERY_S} "
          f"(measured on a shared, loaded machine)")
    print(f"{'cycle':34} {small:>6} rules: s   stmts   {large:>6} rules: s   stmts  transitions  notifications"
          "  stmts ratio")
    for (name, s_small, q_small, *_), (_n, s_large, q_large, t_large, n_large) in zip(
            results[small], results[large], strict=True):
        print(f"{name:34} {s_small:14.3f} {q_small:7d} {s_large:16.3f} {q_large:7d} {t_large:12d} {n_large:14d} "
              f"{q_large / q_small:11.2f}")
    worst = max(row[1] for row in results[large])
    print(f"worst cycle with {large} rules × {args.labels} label sets: {worst:.3f} s "
          f"({worst / alerting_settings.EVALUATE_EVERY_S:.1%} of the interval)")


if __name__ == "__main__":
    main()
