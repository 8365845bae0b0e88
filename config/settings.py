"""Bulwark settings: everything comes from the environment; nothing set means the embedded default."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BULWARK_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0/true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
_INSECURE_KEY = "django-insecure-bulwark-embedded-default-do-not-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY") or _INSECURE_KEY
if not DEBUG and SECRET_KEY == _INSECURE_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG=0")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")

INSTALLED_APPS = [
    "apps.tenancy.admin_config.BulwarkAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "channels",
    "apps.core",
    "apps.tenancy",
    "apps.audit",
    "apps.jobs",
    "apps.ratelimit",
    "apps.resilience",
    "apps.caching",
    "apps.monitoring",
    "apps.analytics",
    "apps.alerting",
    "apps.optimization",
    "apps.console",
]

MIDDLEWARE = [
    # First, so rate-limited, cached and refused responses are measured too.
    "apps.monitoring.middleware.MonitoringMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "apps.core.middleware.ApiRequestMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.tenancy.login_limit.LoginLimitMiddleware",
    "apps.tenancy.middleware.TenantMiddleware",
    "apps.ratelimit.middleware.RateLimitMiddleware",
    "apps.caching.middleware.CacheMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.tenancy.context_processors.tenancy",
            ],
        },
    },
]

DB_POOL_MAX_SIZE = int(os.environ.get("BULWARK_DB_POOL_MAX_SIZE", "10"))
DB_POOL_MIN_SIZE = min(int(os.environ.get("BULWARK_DB_POOL_MIN_SIZE", "1")), DB_POOL_MAX_SIZE)
DB_POOL_TIMEOUT_S = float(os.environ.get("BULWARK_DB_POOL_TIMEOUT_S", "5"))
# django-q2 forks its workers, and a psycopg pool's threads do not survive a fork; each worker runs one task
# at a time, so a qcluster keeps one persistent connection per process instead (checked by the jobs runner
# at most once per CONN_CHECK_EVERY_S).
RUNS_QCLUSTER = len(sys.argv) > 1 and sys.argv[1] == "qcluster"
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=60 if RUNS_QCLUSTER else 0, conn_health_checks=RUNS_QCLUSTER)}
    if (DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL_MAX_SIZE > 0
            and not RUNS_QCLUSTER):
        # One bounded psycopg pool per process (Django's built-in pooling, which requires CONN_MAX_AGE=0):
        # ASGI runs each request on its own thread, so without it every thread opened its own connection
        # and two workers under load ran PostgreSQL out of connections. A request that waits longer than
        # the timeout for a slot answers 503 with Retry-After (apps.core.middleware / api.errors).
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": DB_POOL_MIN_SIZE,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT_S,
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "bulwark.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "bulwark",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                "CONNECTION_POOL_KWARGS": {"max_connections": 200, "health_check_interval": 30},
            },
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bulwark"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

Q_CLUSTER = {
    "name": "bulwark",
    "workers": int(os.environ.get("BULWARK_Q_WORKERS", "2")),
    "timeout": int(os.environ.get("BULWARK_Q_TIMEOUT", "600")),
    "retry": int(os.environ.get("BULWARK_Q_RETRY", "720")),
    "max_attempts": 1,
    "save_limit": 1000,
    "catch_up": False,
    "label": "Django Q2",
}
if REDIS_URL:
    # django-q2's own connection, not the cache's: the broker BLPOPs with a 1 s timeout, which the cache's
    # 0.5 s socket timeout would cut, making the pusher crash and sleep 10 s before every restart.
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Django's ModelBackend behind the platform login limit, which refuses locked-out IPs and usernames before any
# password is checked. Other backends (LDAP, SSO) go after it.
AUTHENTICATION_BACKENDS = ["apps.tenancy.login_limit.LoginLimitBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.tenancy.authentication.TenantTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.tenancy.permissions.TenantRolePermission"],
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "apps.core.api.filters.BoundedSearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "apps.core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Bulwark API",
    "DESCRIPTION": "Rate limits, circuit breakers, response caching, jobs and audit, per tenant.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set shared by several fields (a run's status is also an attempt's outcome).
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.jobs.models.JobRun.Status",
        "BreakerOutcomeEnum": ["success", "failure", "ignored"],
        "AlertStateEnum": "apps.alerting.models.AlertState",
        "AlertChannelKindEnum": "apps.alerting.models.ChannelKind",
        "FindingKindEnum": "apps.optimization.models.Kind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.api.schema.document_error_responses",
    ],
}

# Mail (tenancy's invitations): printed to the console while developing, SMTP otherwise.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "bulwark@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Whose policies govern requests without a tenant (the logins). The demo tenant while developing.
# BULWARK_RATELIMIT_ANONYMOUS_TENANT is the earlier name, still honoured.
_ANONYMOUS_TENANT = os.environ.get(
    "BULWARK_ANONYMOUS_TENANT", os.environ.get("BULWARK_RATELIMIT_ANONYMOUS_TENANT", "acme" if DEBUG else "")
) or None

# Bulwark's own settings: one namespace, one section per app, validated by each app's conf module.
BULWARK: dict = {
    "CORE": {
        "TRUSTED_PROXIES": env_list("BULWARK_TRUSTED_PROXIES", []),
        "ANONYMOUS_TENANT": _ANONYMOUS_TENANT,
        "HEALTH_REQUIRE_STORE": env_bool("BULWARK_HEALTH_REQUIRE_STORE", False),
    },
    "LOGIN_LIMIT": {
        "ENABLED": env_bool("BULWARK_LOGIN_LIMIT", True),
    },
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
