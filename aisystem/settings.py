"""Django settings for aisystem.

This is the one place that reads the environment (see the table in README.md). Two modes:

* embedded default: SQLite in ``var/`` (WAL, IMMEDIATE transactions, busy timeout), the
  database as cache and job broker, secrets generated into ``var/`` on first run;
* scaled: ``DATABASE_URL`` points at PostgreSQL and ``REDIS_URL`` at Redis, which then carries
  the channel layer and the cache.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from aisystem.envconfig import (
    env_bool,
    env_int,
    env_list,
    env_networks,
    local_secret,
    parse_model_prices,
    private_directory,
    private_file,
)
from aisystem.webhooks.retry import DEFAULT_SCHEDULE as DEFAULT_RETRY_SCHEDULE
from aisystem.webhooks.retry import retry_schedule_parse

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AISYSTEM_DATA_DIR") or BASE_DIR / "var")
# It holds every conversation and the generated keys: 0700 whatever the umask.
private_directory(DATA_DIR)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or local_secret(
    DATA_DIR / "secret_key", get_random_secret_key
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])


def _encryption_keys() -> list[str]:
    """Newest key first; every key is validated so a typo stops start-up, naming the setting."""
    raw = os.environ.get("FIELD_ENCRYPTION_KEYS", "")
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        keys = [
            local_secret(DATA_DIR / "field_encryption_key", lambda: Fernet.generate_key().decode())
        ]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} of {len(keys)} is not a Fernet key "
                "(32 url-safe base64-encoded bytes). Generate one with: python -c "
                '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from None
    return keys


FIELD_ENCRYPTION_KEYS = _encryption_keys()
FIELD_ENCRYPTION_KEYS_FROM_ENV = bool(os.environ.get("FIELD_ENCRYPTION_KEYS", "").strip())

INSTALLED_APPS = [
    "daphne",
    "aisystem.apps.AisystemAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_q",
    "social_django",
    "ninja",
    "axes",
    "aisystem.apps.AisystemConfig",
    "pipeline.apps.PipelineConfig",
    "telegram_bridge.apps.TelegramBridgeConfig",
]

MIDDLEWARE = [
    # First: the client's address and scheme, from forwarded headers of trusted proxies only.
    "aisystem.forwarded.trusted_proxy_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "aisystem.integrations.views.SocialAuthErrorPage",
    "aisystem.accounts.slowdown.signin_slowdown_middleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "aisystem.urls"
ASGI_APPLICATION = "aisystem.asgi.application"
WSGI_APPLICATION = "aisystem.wsgi.application"

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

# --- Database -------------------------------------------------------------------------------
SQLITE_OPTIONS = {
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on the busy timeout
    # instead of failing with "database is locked" when a read transaction upgrades.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": (
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA busy_timeout=20000;"
        "PRAGMA temp_store=MEMORY"
    ),
}

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if DATABASE_URL:
    try:
        _db = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
else:
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "aisystem.sqlite3")}

if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
    # A file, not :memory:, so tests that start a second process share the test database.
    _db["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    # The database and its -wal/-shm files: 0600 whatever the umask (the embedded default's is
    # made here, so SQLite gives the other two its mode; envconfig.private_file).
    if _db["NAME"] and _db["NAME"] != ":memory:" and not str(_db["NAME"]).startswith("file:"):
        _sqlite = Path(_db["NAME"])
        private_file(_sqlite, create=not DATABASE_URL)
        for _suffix in ("-wal", "-shm"):
            private_file(_sqlite.with_name(_sqlite.name + _suffix), create=False)
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and channel layer --------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis's layer with a fix for lost cancellations (see the class).
            "BACKEND": "aisystem.live.layers.RedisChannelLayer",
            # A consumer waits on BZPOPMIN for 5 s at a time; redis-py's default 5 s socket
            # timeout would cut that wait and crash idle sockets, so the read timeout is longer.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        },
        # The live feed's events: published once, received once by each web process's relay.
        # Pub/sub channels ignore the database number, so the prefix carries it.
        "events": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": f"aisystem-db{urlparse(REDIS_URL).path.strip('/') or '0'}",
            },
        },
    }
else:
    # The database cache is shared by every process on the machine, unlike the local-memory one.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "aisystem_cache",
        }
    }
    # In-process only; the live feed's relays carry events across processes (see LIVE_FEED).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Inside each web process the live feed fans out on a layer of its own (aisystem/live/layers.py).
CHANNEL_LAYERS["live"] = {
    "BACKEND": "aisystem.live.layers.LocalFanoutLayer",
    # A browser that falls this many batches behind misses the newest ones.
    "CONFIG": {"capacity": 1000},
}

# --- Live feed (/live/, aisystem/live/) -----------------------------------------------------
# Each web process runs one relay while a browser watches; it receives every event once and
# fans it out to its own browsers. SOURCE says where the relay gets events: "database" polls
# the Event table (the embedded default: every process writes there, no server needed);
# "channel_layer" receives what events_record publishes on the "events" layer (channels-redis
# pub/sub; needs REDIS_URL).
# See README, "Live feed".
LIVE_FEED = {
    "SOURCE": os.environ.get("LIVE_FEED_SOURCE", "channel_layer" if REDIS_URL else "database"),
    "POLL_SECONDS": env_int("LIVE_FEED_POLL_MS", 50, minimum=5) / 1000,
    # On PostgreSQL ids can commit out of order: a missing id is looked for this long.
    "REORDER_WINDOW_SECONDS": env_int("LIVE_FEED_REORDER_WINDOW_SECONDS", 10, minimum=0),
    "HISTORY": env_int("LIVE_FEED_HISTORY", 200, minimum=0),
    # How often an open socket re-checks that its user is still active staff.
    "RECHECK_SECONDS": env_int("LIVE_FEED_RECHECK_SECONDS", 60, minimum=1),
}
if LIVE_FEED["SOURCE"] not in ("database", "channel_layer"):
    raise ImproperlyConfigured("LIVE_FEED_SOURCE must be database or channel_layer.")
if LIVE_FEED["SOURCE"] == "channel_layer" and not REDIS_URL:
    raise ImproperlyConfigured(
        "LIVE_FEED_SOURCE=channel_layer needs REDIS_URL: the in-memory layer does not reach "
        "other processes."
    )

# --- Background jobs (django-q2, ORM broker) ---------------------------------------------
Q_CLUSTER = {
    "name": "aisystem",
    "orm": "default",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": 300,
    "retry": 360,
    "max_attempts": 5,
    "catch_up": False,
    "poll": 0.5,
    "ack_failures": True,
    "label": "Background jobs",
}

# --- Outgoing webhooks (aisystem/webhooks/) ---------------------------------------------------
# Standard Webhooks deliveries, retried after each delay of AISYSTEM_WEBHOOK_RETRY_SCHEDULE
# (with ±10 % jitter; the minutely sweep serves delays shorter than a minute), dead after the
# last. See README, "Events and webhooks".
WEBHOOK_RETRY_SCHEDULE = retry_schedule_parse(
    os.environ.get("AISYSTEM_WEBHOOK_RETRY_SCHEDULE") or DEFAULT_RETRY_SCHEDULE
)
# Private, loopback and link-local addresses are refused unless this is set (development).
WEBHOOK_ALLOW_PRIVATE = env_bool("AISYSTEM_WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_TIMEOUT_SECONDS = 10.0
# How long a worker's claim on a delivery lasts; a worker silent for longer is presumed dead
# and the delivery is sent again. Must exceed the timeout (connect + answer).
WEBHOOK_LEASE_SECONDS = env_int("AISYSTEM_WEBHOOK_LEASE_SECONDS", 60, minimum=30)

# --- Message leases (aisystem/services/leases.py) ------------------------------------------
# How long a process's claim on a message it is answering lasts without renewal (its heartbeat
# renews it every third of that); a message whose lease ran out is an orphan, answered by a
# worker (pipeline/orphans.py).
MESSAGE_LEASE_SECONDS = env_int("AISYSTEM_MESSAGE_LEASE_SECONDS", 30, minimum=3)
# An endpoint failing without a single success for this long is disabled.
WEBHOOK_DISABLE_AFTER_DAYS = env_int("AISYSTEM_WEBHOOK_DISABLE_AFTER_DAYS", 5, minimum=1)
# After "rotate secret", the old secret signs too for this long.
WEBHOOK_ROTATION_OVERLAP_HOURS = env_int("AISYSTEM_WEBHOOK_ROTATION_OVERLAP_HOURS", 24, minimum=0)

# --- Retention (aisystem/services/retention.py): days kept, purged daily in batches -----------
RETENTION = {
    "EVENTS_DAYS": env_int("AISYSTEM_RETENTION_EVENTS_DAYS", 30, minimum=1),
    "EXTERNAL_CALLS_DAYS": env_int("AISYSTEM_RETENTION_EXTERNAL_CALLS_DAYS", 30, minimum=1),
    "WEBHOOK_DELIVERIES_DAYS": env_int("AISYSTEM_RETENTION_WEBHOOK_DELIVERIES_DAYS", 14, minimum=1),
}

# --- Reminders (aisystem/services/reminders.py) ---------------------------------------------
# The most active reminders and scheduled prompts one person may have; past it, /remind says so.
AISYSTEM_REMINDERS_PER_PERSON = env_int("AISYSTEM_REMINDERS_PER_PERSON", 50, minimum=1)

# --- Auth, admin, OAuth ---------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out sign-ins
    "django.contrib.auth.backends.ModelBackend",
    # The integrations' providers (aisystem/integrations/); one without a client id and
    # secret is offered nowhere, and its social-auth URLs answer with a clear page.
    "aisystem.integrations.github.GitHubBackend",
    "aisystem.integrations.google.GoogleBackend",
]
# Sign-in lockout (django-axes; the site's and the admin's sign-in): after
# AISYSTEM_SIGNIN_FAILURES failed attempts for one username from one address, that pair is
# refused (429) for AISYSTEM_SIGNIN_LOCKOUT_MINUTES; a successful sign-in clears the count.
# The address is the connection's, or, behind proxies listed in AISYSTEM_TRUSTED_PROXIES, the
# client's as they forward it (aisystem/forwarded.py). Failures for one username from all
# addresses slow its sign-ins down instead (aisystem/accounts/slowdown.py): past
# AISYSTEM_SIGNIN_SLOW_AFTER each waits FIRST_DELAY_SECONDS, doubling, at most
# AISYSTEM_SIGNIN_SLOW_MAX_SECONDS (0 turns the slow-down off).
AXES_FAILURE_LIMIT = env_int("AISYSTEM_SIGNIN_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AISYSTEM_SIGNIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "aisystem.accounts.views.signin_locked_out"
AXES_VERBOSE = False
SIGNIN_SLOWDOWN = {
    "AFTER_FAILURES": env_int("AISYSTEM_SIGNIN_SLOW_AFTER", 10, minimum=1),
    "FIRST_DELAY_SECONDS": 1.0,
    "MAX_DELAY_SECONDS": float(env_int("AISYSTEM_SIGNIN_SLOW_MAX_SECONDS", 10, minimum=0)),
}
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"  # /accounts/login/: staff and non-staff (the admin's admits staff only)
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SOCIAL_AUTH_STORAGE = "aisystem.social.EncryptedDjangoStorage"
SOCIAL_AUTH_STRATEGY = "aisystem.social.PublicUrlStrategy"
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/chat/"
SOCIAL_AUTH_REQUESTS_TIMEOUT = 10
SOCIAL_AUTH_SANITIZE_REDIRECTS = True
# One pipeline, two flows (aisystem/integrations/flow.py): connecting an account to the person
# who asked for the link, and signing in an existing person. Nobody is created by sign-in.
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "aisystem.integrations.flow.connect_user",
    "social_core.pipeline.social_auth.social_user",
    "aisystem.integrations.flow.sign_in_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "aisystem.integrations.flow.account_record",
)

# --- Integrations: each person connects their own GitHub or Google account ---------------------
PORT = env_int("PORT", 8000, minimum=1)
# The absolute base of the links the assistant sends (and of the OAuth callbacks).
AISYSTEM_PUBLIC_URL = (os.environ.get("AISYSTEM_PUBLIC_URL") or f"http://127.0.0.1:{PORT}").rstrip(
    "/"
) + "/"
INTEGRATIONS = {
    "github": {
        "CLIENT_ID": os.environ.get("AISYSTEM_GITHUB_CLIENT_ID", ""),
        "CLIENT_SECRET": os.environ.get("AISYSTEM_GITHUB_CLIENT_SECRET", ""),
        "URL": os.environ.get("AISYSTEM_GITHUB_URL") or "https://github.com/",
        "API_URL": os.environ.get("AISYSTEM_GITHUB_API_URL") or "https://api.github.com/",
    },
    "google": {
        "CLIENT_ID": os.environ.get("AISYSTEM_GOOGLE_CLIENT_ID", ""),
        "CLIENT_SECRET": os.environ.get("AISYSTEM_GOOGLE_CLIENT_SECRET", ""),
        # Google's own addresses; settable so that tests can use providers on loopback.
        "OIDC_URL": os.environ.get("AISYSTEM_GOOGLE_OIDC_URL") or "https://accounts.google.com",
        "CALENDAR_URL": os.environ.get("AISYSTEM_GOOGLE_CALENDAR_URL")
        or "https://www.googleapis.com/calendar/v3/",
        "REVOKE_URL": os.environ.get("AISYSTEM_GOOGLE_REVOKE_URL")
        or "https://oauth2.googleapis.com/revoke",
    },
}

# --- Internationalisation, static files ------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# With DEBUG on, serve straight from the apps' static folders, no collectstatic needed.
WHITENOISE_USE_FINDERS = DEBUG

# --- Security headers -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS, off by default (the embedded default is plain HTTP on loopback); README, "Running in
# production". HSTS covers subdomains unless told otherwise; preloading is a commitment to the
# browsers' list that only the domain's owner can make, so it stays off and Django's reminder
# about it (security.W021) is silenced.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]  # load balancers probe it over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Reverse proxies whose X-Forwarded-For/-Proto are believed (addresses or CIDR blocks; default
# none). Only then is X-Forwarded-Proto a sign of HTTPS, and only as aisystem/forwarded.py
# leaves it: from a trusted proxy, for the client's own hop.
TRUSTED_PROXIES = env_networks("AISYSTEM_TRUSTED_PROXIES")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None

# Content-Security-Policy (django-csp): scripts and styles come only from our static files (no
# inline script, handler or style anywhere we render, the Django admin's included); sockets and
# fetches go to this origin. Forms post here, or to the sign-in providers (the "Sign in with"
# and connect forms redirect there, which form-action covers too).
_PROVIDER_ORIGINS = sorted(
    {
        f"{urlparse(url).scheme}://{urlparse(url).netloc}"
        for url in (INTEGRATIONS["github"]["URL"], INTEGRATIONS["google"]["OIDC_URL"])
    }
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF, *_PROVIDER_ORIGINS],
    }
}
# Permissions-Policy (django-permissions-policy): no page here uses any of these.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}

# --- Product settings -----------------------------------------------------------------------
ANTHROPIC_API_KEY = os.environ.get("ANTHROPIC_API_KEY", "")
ANTHROPIC_BASE_URL = os.environ.get("ANTHROPIC_BASE_URL", "")
DEFAULT_MODEL = os.environ.get("AISYSTEM_DEFAULT_MODEL", "claude-sonnet-4-6")

# The pipeline. Every figure can be changed without code; the README's table lists them.
PIPELINE = {
    # Messages older than this are dropped by the security gate, except during catch-up.
    "STALE_AFTER_SECONDS": env_int("AISYSTEM_STALE_AFTER_SECONDS", 300, minimum=1),
    # A denied sender gets at most one short answer per this many seconds.
    "DENIAL_NOTICE_WINDOW_SECONDS": env_int("AISYSTEM_DENIAL_NOTICE_WINDOW", 600, minimum=1),
    # Upper bound of one message's text; longer input is refused with a clear answer.
    "MAX_INPUT_CHARS": env_int("AISYSTEM_MAX_INPUT_CHARS", 32000, minimum=1),
    # Attachments Claude may see: images and PDFs as blocks, text files inlined.
    "MAX_IMAGE_BYTES": env_int("AISYSTEM_MAX_IMAGE_BYTES", 5 * 1024 * 1024, minimum=1),
    "MAX_PDF_BYTES": env_int("AISYSTEM_MAX_PDF_BYTES", 20 * 1024 * 1024, minimum=1),
    "MAX_TEXT_FILE_BYTES": env_int("AISYSTEM_MAX_TEXT_FILE_BYTES", 200 * 1024, minimum=1),
    # How many tool-use round trips one message may take.
    "MAX_TOOL_ROUNDS": env_int("AISYSTEM_MAX_TOOL_ROUNDS", 5, minimum=1),
}

# The Claude client: one layer of retries (the SDK's own are switched off) and a breaker
# whose state is shared by every process through the database.
CLAUDE = {
    # Deadlines: one attempt (connect to the stream's end) gets TIMEOUT_SECONDS, one answer
    # (every attempt, backoff and wait of one Claude call) ANSWER_TIMEOUT_SECONDS.
    "TIMEOUT_SECONDS": env_int("CLAUDE_TIMEOUT_SECONDS", 120, minimum=1),
    "ANSWER_TIMEOUT_SECONDS": env_int("CLAUDE_ANSWER_TIMEOUT_SECONDS", 300, minimum=1),
    "MAX_ATTEMPTS": env_int("CLAUDE_MAX_ATTEMPTS", 4, minimum=1),
    "BACKOFF_BASE_SECONDS": float(os.environ.get("CLAUDE_BACKOFF_BASE_SECONDS", "0.5")),
    "BACKOFF_MAX_SECONDS": float(os.environ.get("CLAUDE_BACKOFF_MAX_SECONDS", "20")),
    # A 429 whose retry-after exceeds this cools the key down instead of waiting in-line.
    "MAX_INLINE_WAIT_SECONDS": float(os.environ.get("CLAUDE_MAX_INLINE_WAIT_SECONDS", "10")),
    "BREAKER_FAILURE_THRESHOLD": env_int("CLAUDE_BREAKER_FAILURES", 5, minimum=1),
    "BREAKER_OPEN_SECONDS": env_int("CLAUDE_BREAKER_OPEN_SECONDS", 30, minimum=1),
    # The half-open probe's lease, renewed while the probe runs: one whose process died is
    # taken over this long after its last renewal.
    "BREAKER_PROBE_LEASE_SECONDS": env_int("CLAUDE_BREAKER_PROBE_LEASE_SECONDS", 10, minimum=2),
}

# The Telegram bridge (python manage.py runbridge).
TELEGRAM_BRIDGE = {
    "SESSION": os.environ.get("TELEGRAM_SESSION", "default"),  # TelegramSession.name to run
    "MAX_CONCURRENCY": env_int("TELEGRAM_MAX_CONCURRENCY", 16, minimum=1),
    "MAX_PENDING": env_int("TELEGRAM_MAX_PENDING", 1000, minimum=1),
    "SHUTDOWN_DEADLINE_SECONDS": env_int("TELEGRAM_SHUTDOWN_DEADLINE", 30, minimum=1),
    "CATCH_UP_MINUTES": env_int("TELEGRAM_CATCH_UP_MINUTES", 60, minimum=0),
    "CATCH_UP_MESSAGES": env_int("TELEGRAM_CATCH_UP_MESSAGES", 200, minimum=0),
    "FLOOD_WAIT_MAX_SECONDS": env_int("TELEGRAM_FLOOD_WAIT_MAX", 30, minimum=0),
    "ALBUM_WAIT_SECONDS": float(os.environ.get("TELEGRAM_ALBUM_WAIT_SECONDS", "1.0")),
    "HEARTBEAT_SECONDS": env_int("TELEGRAM_HEARTBEAT_SECONDS", 10, minimum=1),
}

# US dollars per million tokens (input, output), for budgets and the usage figures.
# Overrides: AISYSTEM_MODEL_PRICES="model=in/out,model=in/out". Unknown models use "default".
MODEL_PRICES = parse_model_prices(
    os.environ.get("AISYSTEM_MODEL_PRICES", ""),
    {
        "claude-opus-4-5": ("5", "25"),
        "claude-opus-4-1": ("15", "75"),
        "claude-sonnet-4-6": ("3", "15"),
        "claude-sonnet-4-5": ("3", "15"),
        "claude-sonnet-4": ("3", "15"),
        "claude-haiku-4-5": ("1", "5"),
        "default": ("3", "15"),
    },
)

# --- Logging (structlog renders; secrets are never passed to a logger) --------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": "aisystem.logconfig.make_formatter",
            "json": env_bool("LOG_JSON", False),
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Metrics (GET /metrics, aisystem/metrics/) ----------------------------------------------
# prometheus-client's multiprocess mode: every process of this host writes its metrics to files
# in this directory and one scrape reads them all. Settled here, before the library is first
# imported (it picks its mode then). Unset: DATA_DIR/prometheus; empty: off (each process its
# own). The first process of a run wipes what the last run left. See README, "Metrics".
from aisystem.metrics.multiproc import multiproc_configure  # noqa: E402

METRICS_MULTIPROC_DIR = multiproc_configure(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR"), default=DATA_DIR / "prometheus"
)
