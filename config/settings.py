"""Settings, all read from the environment (django-environ); README lists every variable.

The defaults give a working trial install: SQLite under var/, debug off, a development
secret key. Production sets at least SECRET_KEY, DATABASE_URL and ALLOWED_HOSTS.
"""

import logging
import os
import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config import SERVED_BY_ASGI
from config.environment import env_bool, env_float, env_int, raw_value

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# DRF's parse_rate reads "N/<s|m|h|d>..." by the period's first letter: "5/fortnight" failed on every request
# and "5/month" would have meant a minute. Only these periods, and at least one request per period.
_RATE = re.compile(r"(\d+)/(s|sec|second|m|min|minute|h|hour|d|day)s?", re.IGNORECASE)


def env_rate(name, default):
    raw = raw_value(name) or default
    match = _RATE.fullmatch(raw)
    if match is None or int(match[1]) < 1:
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 60/min (at least 1 per second, minute, hour or day), not {raw!r}"
        )
    return f"{int(match[1])}/{match[2].lower()}"


DEBUG = env_bool("DEBUG", False)
# The development key starts "django-insecure-": `manage.py check --deploy` warns while it is in
# use (security.W009), since it also signs the API's tokens unless JWT_SIGNING_KEY is set.
DEVELOPMENT_SECRET_KEY = "django-insecure-dev-only-key-change-me-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not SECRET_KEY.strip():
    # Set but empty (a template's unset variable): not the development key, which would sign tokens
    # anyone can forge, nor Django's "The SECRET_KEY setting must not be empty" that names no variable.
    raise ImproperlyConfigured("SECRET_KEY must not be empty: set a long random value (or unset it for a trial)")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS (found by an outside sweep: `check --deploy` could not be cleared, the admin's session
# cookie went without Secure, and behind the TLS proxy every Location and Link URL was http://) ---
# Trusted proxies in front of the service (the rate limits' client address, REST_FRAMEWORK below).
NUM_PROXIES = env_int("NUM_PROXIES", 0, minimum=0)
# Behind them, the proxy says whether the client spoke https (it must set X-Forwarded-Proto itself,
# replacing a client's); without a proxy the header is the client's own and never trusted.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if NUM_PROXIES > 0 else None
# Cookies over https only, unless DEBUG; `make run` (plain http) turns them off for its admin login.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Off by default (the proxy usually redirects); /healthz stays plain http for the probes either way.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]


_URL_PASSWORD = re.compile(r"^([a-z0-9+.-]*://[^/@:]*):([^/@]*)@", re.IGNORECASE)


def without_password(text: str, url: str) -> str:
    """`text` (the URL, or an error about it) as it may be shown in an error or a log: the URL's
    password (`scheme://user:password@`) as ***."""
    match = _URL_PASSWORD.match(url)
    return text.replace(match[2], "***") if match and match[2] else text


# The engines the service runs on (its SQL is PostgreSQL's, SQLite for trials); another scheme failed
# later in Django with "'foo' isn't an available database backend", without naming DATABASE_URL.
DATABASE_ENGINES = {"django.db.backends.postgresql", "django.db.backends.sqlite3"}
try:
    DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")}
    if DATABASES["default"].get("ENGINE") not in DATABASE_ENGINES:  # an unknown scheme, or none
        raise KeyError("not a postgres:// or sqlite:// URL")
except (KeyError, ValueError, environ.ImproperlyConfigured) as exc:
    # Never the password: this line ends up in cron's mail and the process manager's log.
    raise ImproperlyConfigured(
        "DATABASE_URL must be a database URL such as postgres://user:pass@host:5432/name,"
        f" not {without_password(raw_value('DATABASE_URL') or '', raw_value('DATABASE_URL') or '')!r}"
        f" ({exc.__class__.__name__}: {without_password(str(exc), raw_value('DATABASE_URL') or '')})"
    ) from None
DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60, minimum=0)
# Seconds to wait for PostgreSQL to accept a connection. libpq's default waits for ever: a database host
# that took the TCP connection and answered nothing (a hung server, a half-open failover) held /healthz,
# every request and every cron command until someone killed them (found by the operator's sweep).
# A `?connect_timeout=` in DATABASE_URL wins.
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 10, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
if SERVED_BY_ASGI:
    # Django's docs: "When using ASGI, persistent connections should be disabled". A request's sync
    # code runs in a thread of its own; the connection it kept for CONN_MAX_AGE was never looked at
    # again, and they piled up until PostgreSQL refused new clients (found by an outside tester).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Many short writes from several threads of runserver (and the worker, and cron): wait for the
    # lock instead of failing; take it when a transaction begins (IMMEDIATE), since a read that
    # later wants to write cannot wait and fails at once; and let reads go on while something
    # writes (WAL: a reader sees the last commit instead of waiting for the writer).
    _sqlite = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite.setdefault("timeout", 20)
    _sqlite.setdefault("transaction_mode", "IMMEDIATE")
    _sqlite.setdefault("init_command", "PRAGMA journal_mode=WAL;")
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A covering index's INCLUDE columns are PostgreSQL's (breach_rule_month_total): SQLite builds
    # the index without them, which is all it needs; not a warning on every `migrate`.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
# A list's rows query prepared on the server (config.api.pagination.RowsQuery); off behind a
# connection pooler in transaction mode that cannot keep prepared statements.
PREPARED_ROWS_QUERIES = env_bool("PREPARED_ROWS_QUERIES", True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_fsm",
    "tenancy",
    "events",
    "contracts",
    "slas",
    "workorders",
    "breaches",
    "ledger",
    "reports",  # issue 11: at the top of the layers
    "billing",  # issue 12: billing plans, periods, billing lines, templates (above the ledger)
]

MIDDLEWARE = [
    "config.api.middleware.RequestLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.api.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
APPEND_SLASH = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": (raw_value("LOG_LEVEL") or "INFO").upper()},
}
if LOGGING["root"]["level"] not in logging.getLevelNamesMapping():
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {raw_value('LOG_LEVEL')!r}"
    )

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenancy.auth.TenantJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["config.api.permissions.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.PagePagination",
    "DEFAULT_FILTER_BACKENDS": [
        "config.api.filters.PredicateFilterBackend",
        "config.api.sorting.SortBackend",
    ],
    "EXCEPTION_HANDLER": "config.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "config.api.throttling.AnonThrottle",
        "config.api.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("THROTTLE_ANON_RATE", "60/min"),
        "user": env_rate("THROTTLE_USER_RATE", "6000/min"),
        # POST /api/v1/token, counted per client address and per username (issue 8).
        "login": env_rate("THROTTLE_LOGIN_RATE", "10/min"),
    },
    # The client address that rate limits count by: REMOTE_ADDR, or behind NUM_PROXIES trusted
    # proxies the address the outermost of them saw (X-Forwarded-For); never a client's own header.
    "NUM_PROXIES": NUM_PROXIES,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 60, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "ALGORITHM": "HS256",
    # Empty means the default (SECRET_KEY), as for every variable: an empty key made every login a 500.
    "SIGNING_KEY": os.environ["JWT_SIGNING_KEY"] if raw_value("JWT_SIGNING_KEY") else SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}

# External OAuth2 issuer (RS256/ES256). Off unless a public key or a JWKS URL is given.
EXTERNAL_JWT = {
    "PUBLIC_KEY": env.str("JWT_PUBLIC_KEY", default=""),
    "JWKS_URL": env.str("JWT_JWKS_URL", default=""),
    "ISSUER": env.str("JWT_ISSUER", default=""),
    "AUDIENCE": env.str("JWT_AUDIENCE", default=""),
    "ORG_CLAIM": env.str("JWT_ORG_CLAIM", default="org"),
    "ROLE_CLAIM": env.str("JWT_ROLE_CLAIM", default="role"),
    "ALGORITHMS": ["RS256", "ES256"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Service contract and SLA management API",
    "DESCRIPTION": (
        "Contracts, SLA rules, work orders, breaches and the hour ledger. Collections return a "
        "bare JSON array with X-Pagination-* and Link headers; errors are "
        '`{"message": ..., "errors": {...}}`. Authenticate with `Authorization: Bearer <token>` '
        "from POST /api/v1/token."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "GET_LIB_DOC_EXCLUDES": "config.api.schema.lib_doc_excludes",
    # Swagger UI and ReDoc from the service's own static files (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PriorityEnum": "slas.models.SlaRule.Priority",
        "ContractStatusEnum": "contracts.models.Contract.Status",
        "WorkOrderStatusEnum": "workorders.models.WorkOrder.Status",
        "BreachStateEnum": "breaches.models.Breach.State",
        "ClockStateEnum": "workorders.models.SlaClock.State",
        "BacktestOutcomeEnum": "reports.backtest.OUTCOMES",  # a job's outcome under current and proposed terms
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.schema.strip_trailing_slashes",
        "config.api.schema.document_rate_limit_headers",
        "config.api.schema.describe_format_parameter",
        "config.api.schema.nullable_references",
        "config.api.schema.csv_is_text",
    ],
    "APPEND_COMPONENTS": {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": {"type": "string"},
                    "errors": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
}

# --- Robustness (issue 8): request limits, shared throttle cache, offline API docs ---
# The largest request body any endpoint or admin form takes; a larger one is a 413.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# The longest URL (path and query string, in bytes as sent) any endpoint takes; a longer one is a
# JSON 414. gunicorn.conf.py lets request lines up to gunicorn's maximum (8190) reach this check.
MAX_URL_BYTES = env_int("MAX_URL_BYTES", 8000, minimum=1024)  # room for a 1000-id list (MAX_LIST_VALUES)

# Throttle counts (and other cached state) shared by every process when REDIS_URL is set;
# the local-memory cache of one process otherwise (`make run`). CACHE_KEY_PREFIX separates
# deployments (or test runs) sharing one Redis database.
REDIS_URL = raw_value("REDIS_URL") or ""
if REDIS_URL:
    from redis.connection import parse_url

    try:
        parse_url(REDIS_URL)  # checked at start: a malformed one made every API request a 500
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"REDIS_URL must be a redis://, rediss:// or unix:// URL ({without_password(str(exc), REDIS_URL)})"
        ) from None
    CACHES = {
        "default": {
            # Django's Redis cache, not asked for a few seconds after it failed (config.cache).
            "BACKEND": "config.cache.GuardedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sla"),
            # A Redis that does not answer costs a request at most this long (then config.cache's
            # fallbacks), not a worker held until the kernel gives up on the connection.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sla"}}
# The membership behind an access token is cached (tenancy.auth) only where every process sees
# the same cache: with one process's local memory, a removal or demotion made by another process
# (a second gunicorn worker, `manage.py shell`) would go unnoticed until the token expired.
MEMBERSHIP_CACHE = env_bool("MEMBERSHIP_CACHE", bool(REDIS_URL))
# Seconds a cached membership lives at most (and less when the token expires sooner): if Redis failed the
# delete that a demotion or removal sends, the old membership could otherwise be served again once Redis is
# back, until the token expired.
MEMBERSHIP_CACHE_SECONDS = env_int("MEMBERSHIP_CACHE_SECONDS", 60, minimum=1)

# Serve /static/ (the API docs' Swagger UI and ReDoc, the admin's CSS) from the service itself.
SERVE_STATIC = env_bool("SERVE_STATIC", True)

# --- Live event stream (issue 9): WebSocket /api/v1/stream and SSE /api/v1/events/stream ---
# daphne first, so `manage.py runserver` serves HTTP and WebSocket on one port (ASGI).
INSTALLED_APPS = ["daphne", *INSTALLED_APPS, "stream"]
# Pokes ("organization N has new events") between processes: Redis when REDIS_URL is set
# (production, several processes), in memory otherwise (one process: `make run`).
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels-redis waits up to 5 s in BZPOPMIN; redis-py 8 gives up reading after 5 s by default.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="sla"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
STREAM = {
    "AUTH_TIMEOUT": env_float("STREAM_AUTH_TIMEOUT", 5.0, positive=True),  # s to send a valid auth message
    "HEARTBEAT": env_float("STREAM_HEARTBEAT", 30.0, positive=True),  # s between heartbeats (and safety re-reads)
    "SEND_TIMEOUT": env_float("STREAM_SEND_TIMEOUT", 10.0, positive=True),  # s a client may take to take one message
    "REPLAY_LIMIT": env_int("STREAM_REPLAY_LIMIT", 10_000, minimum=1),  # events a resuming cursor may be behind
    "BATCH": env_int("STREAM_BATCH", 200, minimum=1),  # events read per query
    "SSE_RETRY_MS": env_int("STREAM_SSE_RETRY_MS", 2000, minimum=0),  # EventSource's reconnection delay
    # GraphQL subscriptions one WebSocket may run at once (each follows the log on its own)
    "MAX_SUBSCRIPTIONS": env_int("STREAM_MAX_SUBSCRIPTIONS", 10, minimum=1),
    # per process, on PostgreSQL: parallel reads (connections)
    "DB_THREADS": env_int("STREAM_DB_THREADS", 8, minimum=1),
}

# --- Webhooks and e-mail (issue 9) ---
INSTALLED_APPS += ["notifications"]
# E-mail through Django's backend, configured by one URL (django-environ): consolemail:// (the
# default: printed), smtp://user:password@host:587 (smtp+tls://, smtps://), filemail:///var/mail ...
try:
    vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
except (KeyError, ValueError, environ.ImproperlyConfigured) as exc:
    raise ImproperlyConfigured(
        "EMAIL_URL must be an e-mail URL such as smtp://user@host:587"
        f" ({without_password(str(exc), raw_value('EMAIL_URL') or '')})"
    ) from None
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="SLA service <sla@localhost>")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)  # seconds; Django's default waits forever
# The base of the links in e-mails.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Development and tests only: also deliver to http(s)://127.0.0.0/8 (never in production).
WEBHOOKS_ALLOW_LOOPBACK = env_bool("WEBHOOKS_ALLOW_LOOPBACK", False)
# An endpoint failing every attempt for this long is disabled (a `webhook.disabled` event).
WEBHOOKS_DISABLE_AFTER = timedelta(days=env_float("WEBHOOKS_DISABLE_AFTER_DAYS", 5, positive=True))
WEBHOOKS_TIMEOUT_SECONDS = env_float("WEBHOOKS_TIMEOUT_SECONDS", 10, positive=True)

# --- Agreements drive the field (issue 13) ---
# Planned visits' API and listing: the top layer (reads work orders and the ledger).
INSTALLED_APPS += ["visits"]

# --- Terms over time, counterparty signatures, calendars by country (issue 14) ---
INSTALLED_APPS += ["signing"]  # above slas: the approval page shows SLA targets
# The counterparty's approval link: days it stays valid, and the base URL it is built on (default:
# the URL the API was called on). The page is rate-limited per client address (requests a minute).
SIGNING_LINK_DAYS = env_int("SIGNING_LINK_DAYS", 7, minimum=1)
SIGNING_BASE_URL = env.str("SIGNING_BASE_URL", default="")
SIGNING_RATE_LIMIT_GET = env_int("SIGNING_RATE_LIMIT_GET", 30, minimum=1)
SIGNING_RATE_LIMIT_POST = env_int("SIGNING_RATE_LIMIT_POST", 10, minimum=1)
CSRF_FAILURE_VIEW = "signing.views.csrf_failure"  # a clear page, not Django's debug-style 403
# E-mail (the approval link) goes through EMAIL_URL and DEFAULT_FROM_EMAIL above.

# --- GraphQL (issue 10) ---
INSTALLED_APPS += ["strawberry_django"]
STRAWBERRY_DJANGO = {
    "DEFAULT_PK_FIELD_NAME": "id",
    "PAGINATION_DEFAULT_LIMIT": 20,  # like REST's per_page default
    "PAGINATION_MAX_LIMIT": 100,
    "GENERATE_ENUMS_FROM_CHOICES": True,  # choice fields as enums, named by config/graphql/enums.py
}

# --- GraphiQL (issue 10): its assets are vendored static files, served like the admin's ---
STATICFILES_DIRS = [*globals().get("STATICFILES_DIRS", []), BASE_DIR / "config" / "graphql" / "static"]
# --- Collections (issue 15) ---
# PostgreSQL's default random_page_cost (4) prices an index probe as a spinning disk's seek: a
# page's 100 rows were then joined to their references (select_related) by hashing whole related
# tables, a sequential scan of each per request, instead of 100 index probes: 1-8 ms per list instead
# of 0.1-0.4 (docs/performance.md, sixth pass). With the data on SSD or in memory, 1.1 is the usual
# setting. Set per connection, as a startup option: no round trip, and no change to the server.
# PG_RANDOM_PAGE_COST= (empty) keeps the server's own (e.g. behind a pooler that refuses startup options).
_RANDOM_PAGE_COST = env.str("PG_RANDOM_PAGE_COST", default="1.1").strip()
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and _RANDOM_PAGE_COST:
    try:
        _page_cost = float(_RANDOM_PAGE_COST)
    except ValueError:
        raise ImproperlyConfigured(f"PG_RANDOM_PAGE_COST must be a number, not {_RANDOM_PAGE_COST!r}") from None
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options["options"] = f"{_pg_options.get('options', '')} -c random_page_cost={_page_cost}".strip()
