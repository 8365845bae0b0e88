"""Settings of the alerting latency benchmark: the project's own, plus an endpoint that fails on demand,
and a 1 s stats flush so the figure measures alerting rather than the default 5 s metrics flush."""
from config.settings import *  # noqa: F403
from config.settings import BULWARK

ROOT_URLCONF = "benchmarks.alerting_urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
BULWARK = {**BULWARK, "CORE": {**BULWARK.get("CORE", {}), "STATS_FLUSH_INTERVAL_S": 1.0}}
