"""Settings of the rate-limit benchmarks: the project's, plus tiny endpoints and DRF's throttle as the baseline.

BENCH_RATELIMIT_MIDDLEWARE=0 removes Bulwark's rate-limit middleware (the "without" side of the cost run).
"""
import os

from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE, REST_FRAMEWORK

ROOT_URLCONF = "benchmarks.ratelimit_urls"
if os.environ.get("BENCH_RATELIMIT_MIDDLEWARE", "1") == "0":
    MIDDLEWARE = [m for m in MIDDLEWARE if m != "apps.ratelimit.middleware.RateLimitMiddleware"]
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": "100/min"}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
