"""A real process that counts for the crash-loss test: `python -m tests.core.stats_worker <tenant> <interval s>`.

It counts through each hot-path app's own path (a rate-limit decision, a cache hit, a breaker call) one round
at a time and prints, as one JSON line each, `{"counted": n}` after every round and `{"flushed": n}` after
every flush of the one stats pipeline, where n is the rounds counted before that flush began (all of them went
out in it). The test kills it with SIGKILL: no exit flush runs.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time


def main(tenant_id: int, interval_s: float) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["BULWARK_TEST_DB_NAME"]
    settings.BULWARK = {**settings.BULWARK, "CORE": {**settings.BULWARK["CORE"], "STATS_FLUSH_INTERVAL_S": interval_s}}
    import django

    django.setup()
    from apps.caching import stats as caching_stats
    from apps.caching.models import CachePolicy
    from apps.core import stats
    from apps.ratelimit import decision
    from apps.resilience.runtime import registry
    from apps.tenancy.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    cache_policy = CachePolicy.objects.get(tenant=tenant, name="crash")
    counted = 0
    out = threading.Lock()

    def emit(**line) -> None:
        with out:
            print(json.dumps(line), flush=True)

    flush_all = stats.pipeline.flush_all

    def flush_and_report(now=None) -> None:
        before = counted  # every round counted so far is in the batches this flush takes
        flush_all(now)
        emit(flushed=before)

    stats.pipeline.flush_all = flush_and_report  # the flusher thread calls it through the instance
    while True:
        decision.check(tenant=tenant, descriptors=[decision.Descriptor(key="k", policy="crash")])
        caching_stats.record(cache_policy, hits=1)
        breaker = registry.get("crash", tenant_id)
        breaker.record(breaker.acquire(), "success", duration_s=0.001)
        counted += 1
        emit(counted=counted, flushers=sorted(t.name for t in threading.enumerate() if "flush" in t.name))
        time.sleep(0.005)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
