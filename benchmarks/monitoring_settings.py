"""Settings of the monitoring overhead benchmark: one trivial DRF endpoint behind one of five stacks.

BENCH_MONITORING_STACK: `bare` (Django's own middleware only), `bulwark` (bare + Bulwark's monitoring
middleware), `prometheus` (bare inside django-prometheus's before/after middleware), `silk` (bare + silk),
`whole` (the project's full stack: tenant, rate limit, cache lookup (a miss), monitoring).
"""
import os

from config.settings import *  # noqa: F403
from config.settings import BULWARK, INSTALLED_APPS, MIDDLEWARE

ROOT_URLCONF = "benchmarks.monitoring_urls"
INSTALLED_APPS = [*INSTALLED_APPS, "django_prometheus", "silk"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
BENCH_TENANT = "bench-monitoring"
# Anonymous benchmark requests are the bench tenant's: its rate-limit and cache policies, its metrics.
BULWARK = {**BULWARK, "CORE": {**BULWARK.get("CORE", {}), "ANONYMOUS_TENANT": BENCH_TENANT}}

MONITORING = "apps.monitoring.middleware.MonitoringMiddleware"
DJANGO_ONLY = [m for m in MIDDLEWARE if m.startswith("django.")]
STACKS = {
    "bare": DJANGO_ONLY,
    "bulwark": [MONITORING, *DJANGO_ONLY],
    "prometheus": ["django_prometheus.middleware.PrometheusBeforeMiddleware", *DJANGO_ONLY,
                   "django_prometheus.middleware.PrometheusAfterMiddleware"],
    "silk": [*DJANGO_ONLY, "silk.middleware.SilkyMiddleware"],
    "whole": MIDDLEWARE,
}
MIDDLEWARE = STACKS[os.environ.get("BENCH_MONITORING_STACK", "whole")]
