"""Deplite settings: one module, read from the environment only.

With no environment at all this is the *embedded default* a newcomer gets from
`make run`: a SQLite file under var/, Celery tasks run eagerly in-process, a
local-memory cache, and a SECRET_KEY / Fernet key generated once into var/.
Setting DATABASE_URL and REDIS_URL switches to PostgreSQL and Redis without any
code edit. With DEBUG off, every secret must come from the environment.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from deplite.logs import logging_config as logs_config

BASE_DIR = Path(__file__).resolve().parent.parent
# The one reader of the environment. Setting names are their variables' names, and every
# duration is in seconds (its name says `_SECONDS`, except DESIGN's DEPLITE_UPLOAD_EXPIRY).
env = environ.Env()
VAR_DIR = Path(env.str("DEPLITE_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)


def _generated_once(name: str, make) -> str:
    """A development secret kept in var/ so restarts keep sessions and ciphertexts valid."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _secret(name: str, make) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")
    return _generated_once(name.lower(), make)


SECRET_KEY = _secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))
# Fernet keys, newest first: the first encrypts, all decrypt (MultiFernet).
DEPLITE_ENCRYPTION_KEYS = [
    k.strip()
    for k in _secret("DEPLITE_ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode()).split(",")
    if k.strip()
]

# The base of every link the product emits. Unset, the local server's own address on $PORT
# (`make run PORT=…` sets both), so a pasted agent snippet reaches the server that showed it.
DEPLITE_PUBLIC_URL = env.str("DEPLITE_PUBLIC_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}").rstrip(
    "/"
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[DEPLITE_PUBLIC_URL])

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
    "allauth",
    "allauth.account",
    # Refresh tokens rotate and the old one is blacklisted; "log out everywhere" and a
    # password change blacklist every refresh token of the user.
    "rest_framework_simplejwt.token_blacklist",
    # Listed so its management commands (rotate_encryption_keys) are found.
    "deplite",
    "orgs",
    "storage",
    "triggers",
    "agents",
    "integrations",
    "notifications",
]

MIDDLEWARE = [
    # First: the request id and log context cover everything below, errors included.
    "deplite.middleware.RequestContextMiddleware",
    # Load-balancer probes and Prometheus, before host validation and the HTTPS redirect.
    "deplite.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (Swagger UI's local assets, htmx) served by the app itself in production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "deplite.middleware.ApiBodyLimitMiddleware",
    # Django's session, user and messages middleware, skipped on API calls that carry their
    # own credentials (deplite.middleware.is_machine_api_call): the API never uses a session.
    "deplite.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "deplite.middleware.AuthenticationMiddleware",
    "deplite.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "deplite.middleware.ApiErrorMiddleware",
    "deplite.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "deplite.urls"
WSGI_APPLICATION = "deplite.wsgi.application"
ASGI_APPLICATION = "deplite.asgi.application"

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
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Reuse connections: a new PostgreSQL connection per request costs ~3x in
        # throughput. psycopg's pool rather than persistent connections because
        # persistent connections leak under ASGI (Django's docs say so).
        if env.bool("DATABASE_POOL", default=True):
            DATABASES["default"]["CONN_MAX_AGE"] = 0
            # A pooled connection is checked when handed out (deplite/postgresql/base.py), so after a
            # PostgreSQL restart the dead ones are replaced instead of each failing one request. Django's
            # own check (CONN_HEALTH_CHECKS) is a round trip per request; ours asks PostgreSQL only when
            # the idle socket shows the server has said or closed something.
            DATABASES["default"]["ENGINE"] = "deplite.postgresql"
            DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
            DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
                "min_size": env.int("DATABASE_POOL_MIN", default=1),
                "max_size": env.int("DATABASE_POOL_MAX", default=20),
                # Seconds a request waits for a free connection before it is answered 503.
                "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
            }
        else:
            DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
            DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        # An unreachable database fails a request (and /readyz) in seconds, not the OS's minutes.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "deplite.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The run endpoint's statements are prepared once per connection (deplite/postgresql/prepared.py).
# Turn off behind a transaction-mode pooler that cannot carry prepared statements.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)

# --- redis: cache, celery broker ------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, with one client object per connection pool (deplite/cache.py).
            "BACKEND": "deplite.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "deplite",
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
# A task is acknowledged only after it ran, and re-queued if its worker dies mid-way:
# every task is written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A request never waits on a dead broker for more than this (seconds) after its commit:
# one connect attempt, no publish retry (deplite.background; the sweepers re-send).
DEPLITE_BROKER_CONNECT_TIMEOUT_SECONDS = env.float("DEPLITE_BROKER_CONNECT_TIMEOUT_SECONDS", default=0.1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task whose worker died (SIGKILL, OOM) unacknowledged goes back to the queue after this many seconds.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "socket_timeout": 5,
    "socket_connect_timeout": DEPLITE_BROKER_CONNECT_TIMEOUT_SECONDS,
    "max_retries": 0,  # the producer's connection: fail at once, do not retry connecting
}
CELERY_BROKER_CONNECTION_TIMEOUT = DEPLITE_BROKER_CONNECT_TIMEOUT_SECONDS
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# Workers log through LOGGING below (LOG_FORMAT=json included), with the task id and job id.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Every periodic task (celery beat, or `manage.py embedded_beat` without a broker); seconds.
CELERY_BEAT_SCHEDULE: dict = {
    # Re-enqueues upload verifications whose task was lost; expires abandoned uploads.
    "storage-sweep-files": {"task": "storage.tasks.sweep_files", "schedule": 60.0},
    # Fails running jobs past their timeout and queued jobs nobody claimed in time.
    "jobs-reap": {"task": "triggers.tasks.jobs_reap", "schedule": 30.0},
    # Re-publishes wake-ups for queued jobs whose dispatch was lost.
    "jobs-sweep-queued": {"task": "triggers.tasks.jobs_sweep_queued", "schedule": 15.0},
    "idempotency-keys-purge": {"task": "triggers.tasks.idempotency_keys_purge", "schedule": 3600.0},
    # Expired API refresh tokens and their blacklist rows (they grow with every login and rotation).
    "refresh-tokens-purge": {"task": "orgs.tasks.expired_refresh_tokens_purge", "schedule": 86400.0},
    # Fails the running jobs of agents gone silent.
    "agents-reap-lost": {"task": "agents.tasks.agents_reap_lost", "schedule": 30.0},
    "agent-nonces-purge": {"task": "agents.tasks.agent_nonces_purge", "schedule": 300.0},
}

# --- auth -------------------------------------------------------------------------------
AUTH_USER_MODEL = "orgs.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses while an account is rate-limited from this address (orgs/backends.py).
    "orgs.backends.LoginRateLimitBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_ADAPTER = "orgs.adapter.AccountAdapter"
# Logins are limited by Deplite's own per-account-and-address failure counts (orgs/ratelimit.py).
# allauth's per-address limits on every login attempt and every failure would lock out everyone
# behind one NAT; its other limits (signup, password reset) stay, on the same client address.
ACCOUNT_RATE_LIMITS = {"login": None, "login_failed": None}
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"

# An invitation not accepted within this many seconds expires; an admin invites again.
DEPLITE_INVITATION_EXPIRY_SECONDS = env.int("DEPLITE_INVITATION_EXPIRY_SECONDS", default=7 * 24 * 3600)

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Deplite <noreply@deplite.local>")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", default=15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TOKEN_LIFETIME_SECONDS", default=7 * 24 * 3600)),
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orgs.authentication.ApiTokenAuthentication",
        "orgs.authentication.JWTAuthentication",
        # The logged-in browser session (CSRF enforced on writes): Swagger UI's "Try it out".
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["deplite.api.parsers.JSONAnyContentTypeParser"],
    "DEFAULT_RENDERER_CLASSES": ["deplite.api.camel.CamelJSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "deplite.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "deplite.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["deplite.api.filtering.StrictFilterBackend"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Plain data (no Django import), so settings may read it.
from deplite.api.schema_tags import TAGS as API_TAGS  # noqa: E402

SPECTACULAR_SETTINGS = {
    "TITLE": "Deplite API",
    "DESCRIPTION": "Control plane for deployment workflows that run on your own servers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set where several apps have a `status` or `type` field.
    "ENUM_NAME_OVERRIDES": {
        "ChatProviderEnum": "triggers.models.ChatProvider",
        "JobStatusEnum": "triggers.models.JobStatus",
        "StepStatusEnum": "triggers.models.StepStatus",
        "FileStatusEnum": "storage.models.FileStatus",
        "TriggerTypeEnum": "triggers.models.TriggerType",
    },
    # The agent's long-poll claim is an async Django view, which drf-spectacular does not list by itself.
    "PREPROCESSING_HOOKS": ["agents.schema.document_claim"],
    # Serializers are snake_case; the wire (and so the schema) is camelCase.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "deplite.api.schema_tags.tag_operations",
        "deplite.api.schema_errors.document_errors",
        "deplite.api.schema_bodies.json_request_bodies",
        "deplite.api.camel.camelize_schema",
    ],
    "TAGS": API_TAGS,
}
# Largest JSON body the API reads; larger ones get a 413 before anything is parsed.
DEPLITE_MAX_API_BODY_BYTES = env.int("DEPLITE_MAX_API_BODY_BYTES", default=1024 * 1024)
# Threads per web process serving sync requests (deplite/asgi.py); each holds at most one pooled
# database connection, so keep it at or below DATABASE_POOL_MAX. More threads than this contend for
# the interpreter lock: on 2 cores, with the one-hop bridge (deplite/wsgi_bridge.py), the run's p99 at
# 16 connections was 64 ms (median round) with 3 threads against 69-70 ms with 4, at the same
# throughput (before the bridge, 8 did worse than 4). Fewer would leave too little room for a
# request waiting on a slow bucket endpoint.
WEB_THREADS = env.int("WEB_THREADS", default=3)
# A streamed answer (a static file, a log download) whose client reads nothing for this long is
# abandoned and its connection closed, as nginx's send_timeout; see deplite/wsgi_bridge.py.
WEB_SEND_TIMEOUT_SECONDS = env.float("WEB_SEND_TIMEOUT_SECONDS", default=60.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = DEPLITE_MAX_API_BODY_BYTES

# Rate limits: (failures, window seconds). See orgs/ratelimit.py.
# Failed password logins per account and client address, and per address over all accounts.
DEPLITE_LOGIN_RATE = (env.int("DEPLITE_LOGIN_RATE", default=10), 60)
DEPLITE_LOGIN_ADDRESS_RATE = (env.int("DEPLITE_LOGIN_ADDRESS_RATE", default=100), 60)
# Failed bearer credentials per client address; past it a bad one is a 429, a valid one still passes.
DEPLITE_TOKEN_FAILURE_RATE = (env.int("DEPLITE_TOKEN_FAILURE_RATE", default=30), 60)
# Reverse proxies (CIDRs) whose X-Forwarded-For names the client; none by default, so the
# header is ignored and a client cannot choose the address its limits are counted under.
DEPLITE_TRUSTED_PROXIES = env.list("DEPLITE_TRUSTED_PROXIES", default=[])
for _cidr in DEPLITE_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"DEPLITE_TRUSTED_PROXIES: {_cidr!r} is not an address or CIDR.") from None

# --- storage -------------------------------------------------------------------------------
DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = env.bool("DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS", default=False)
DEPLITE_MAX_UPLOAD_BYTES = env.int("DEPLITE_MAX_UPLOAD_BYTES", default=5 * 1024**3)
# Capped at S3's 7 days where the URL is signed (storage.services.files).
DEPLITE_PRESIGN_EXPIRY_SECONDS = env.int("DEPLITE_PRESIGN_EXPIRY_SECONDS", default=900)
# Seconds (DESIGN §8 names the variable DEPLITE_UPLOAD_EXPIRY).
DEPLITE_UPLOAD_EXPIRY = env.int("DEPLITE_UPLOAD_EXPIRY", default=24 * 3600)

# --- triggers, jobs, agents -------------------------------------------------------------------
# A job's log is capped; past the cap one truncation marker is written and the rest dropped.
DEPLITE_JOB_LOG_MAX_BYTES = env.int("DEPLITE_JOB_LOG_MAX_BYTES", default=5 * 1024 * 1024)
# A queued job nobody claimed within this many seconds fails with a clear error.
DEPLITE_QUEUED_JOB_MAX_AGE_SECONDS = env.int("DEPLITE_QUEUED_JOB_MAX_AGE_SECONDS", default=24 * 3600)
# Extra time past a job's timeout-minutes before the reaper fails it (the agent enforces it first).
DEPLITE_JOB_TIMEOUT_GRACE_SECONDS = env.int("DEPLITE_JOB_TIMEOUT_GRACE_SECONDS", default=120)
DEPLITE_AGENT_OFFLINE_AFTER_SECONDS = env.int("DEPLITE_AGENT_OFFLINE_AFTER_SECONDS", default=60)
DEPLITE_AGENT_LOST_AFTER_SECONDS = env.int("DEPLITE_AGENT_LOST_AFTER_SECONDS", default=300)
# Every web process marks the web tier as up this often (agents.pulse); no mark for three times this
# long means the web tier was down, and agents' silence does not count until it is back.
DEPLITE_SERVER_PULSE_SECONDS = env.float("DEPLITE_SERVER_PULSE_SECONDS", default=10.0)
# A running job claimed longer ago than this (before the heartbeat's signed time) that the agent's
# heartbeat does not list in runningJobs is taken back: requeued if never started, else failed.
DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS = env.int("DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS", default=60)
# Signed agent requests: allowed clock skew, and how long a nonce is remembered (same window).
DEPLITE_AGENT_SIGNATURE_WINDOW_SECONDS = 300
# The longest long poll an agent may ask for (`claim?wait=`).
DEPLITE_AGENT_MAX_WAIT_SECONDS = 30

# --- the agent this server hands out (agents/distribution.py) ---------------------------------
# `manage.py build_agent` (make install, the Procfile's release line) writes the agent's wheel, its
# sha256, install.sh and version.json here; every web process serves /agent/… from it, so in production
# it must be the same directory the web processes see (built into the image, or a shared volume).
DEPLITE_AGENT_DIST_DIR = Path(env.str("DEPLITE_AGENT_DIST_DIR", default=str(VAR_DIR / "agent")))
# The oldest agent version this server still speaks to: older agents get `426 agent_too_old` on heartbeat
# and claim (their running jobs can still report). Raise it to make every host upgrade.
DEPLITE_AGENT_MIN_VERSION = env.str("DEPLITE_AGENT_MIN_VERSION", default="0.1.0")

# --- integrations --------------------------------------------------------------------------
SLACK_CLIENT_ID = env.str("SLACK_CLIENT_ID", default="")
SLACK_CLIENT_SECRET = env.str("SLACK_CLIENT_SECRET", default="")
SLACK_SIGNING_SECRET = env.str("SLACK_SIGNING_SECRET", default="")
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api/")
DISCORD_CLIENT_ID = env.str("DISCORD_CLIENT_ID", default="")
DISCORD_CLIENT_SECRET = env.str("DISCORD_CLIENT_SECRET", default="")
DISCORD_PUBLIC_KEY = env.str("DISCORD_PUBLIC_KEY", default="")
DISCORD_BOT_TOKEN = env.str("DISCORD_BOT_TOKEN", default="")
DISCORD_API_URL = env.str("DISCORD_API_URL", default="https://discord.com/api/v10")

# --- notifications ------------------------------------------------------------------------
# A worker owns a delivery this long (far above the HTTP timeout); past it, the row is
# taken over and the provider asked whether the message exists before sending again.
DEPLITE_NOTIFY_LEASE_SECONDS = env.int("DEPLITE_NOTIFY_LEASE_SECONDS", default=60)
# Attempts per delivery before it is recorded as failed (transient errors only).
DEPLITE_NOTIFY_MAX_ATTEMPTS = env.int("DEPLITE_NOTIFY_MAX_ATTEMPTS", default=8)
# The sweeper re-enqueues a message still owed this long after its scheduled attempt (every
# attempt, backoff and pace included, stamps that time on the row): short, so a killed
# worker's paced backlog moves again within seconds.
DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS = env.int("DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS", default=3)
# Seconds between two messages to one channel (Slack allows about one a second).
DEPLITE_NOTIFY_CHANNEL_INTERVAL = env.float("DEPLITE_NOTIFY_CHANNEL_INTERVAL", default=1.0)
# The outbox's sweeper: messages whose task was lost (broker down, worker killed).
CELERY_BEAT_SCHEDULE["outbox-sweep"] = {"task": "integrations.tasks.outbox_sweep", "schedule": 2.0}

# --- i18n, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static folders as well, so a deployment that skipped
# `collectstatic` still has working pages (collectstatic adds compression).
WHITENOISE_USE_FINDERS = True

# --- security (production) --------------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Pages: scripts and styles only from static files of this origin (no inline code); data:
# images for Swagger UI's icons. connect-src also allows https: (http: when private storage
# endpoints are allowed) because the Files page PUTs uploads straight to the customer's bucket.
# No form-action: "Add to Slack" posts here and is redirected to Slack, which it would block.
DEPLITE_CONTENT_SECURITY_POLICY = env.str(
    "DEPLITE_CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src 'self' https:{' http:' if DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS else ''}; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
)
X_FRAME_OPTIONS = "DENY"

# --- operations: logs, metrics -------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request id, org,
# user/token prefix, job id, agent id, task id). Plain text otherwise (make run).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logs_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
# One line per periodic task run is noise; failures still log at ERROR.
LOGGING["loggers"]["celery.app.trace"] = {"level": env.str("CELERY_TRACE_LOG_LEVEL", default="WARNING")}
# GET /metrics answers only `Authorization: Bearer <this>`; unset, the endpoint is off (404).
DEPLITE_METRICS_TOKEN = env.str("DEPLITE_METRICS_TOKEN", default="")
# A Celery worker serves its own metrics on this port (plain HTTP, no token: bind it to a private address).
DEPLITE_WORKER_METRICS_PORT = env.int("DEPLITE_WORKER_METRICS_PORT", default=0)
DEPLITE_WORKER_METRICS_ADDR = env.str("DEPLITE_WORKER_METRICS_ADDR", default="127.0.0.1")
