"""Settings of the server processes the multi-process caching tests and benchmarks start."""
from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.caching.server_urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
