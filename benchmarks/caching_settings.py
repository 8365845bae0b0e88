"""Settings of the caching benchmarks: the project's, with the benchmark endpoints mounted."""
from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.caching_urls"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
# Server processes of the benchmarks open no lasting connections: 200 request threads must not hold 200.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
