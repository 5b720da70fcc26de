"""creditledger settings: every value comes from the environment.

The defaults run on a bare machine (`make run`): a SQLite file under var/ and a Celery
transport that needs no server. Production and the test suite point DATABASE_URL and
CELERY_BROKER_URL at PostgreSQL and Redis. A value that does not parse stops start-up
with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
_dotenv = BASE_DIR / ".env"
if _dotenv.exists():
    environ.Env.read_env(str(_dotenv))


def _typed(name: str, cast, default):
    """Read one variable, failing loudly with its name when it does not parse."""
    try:
        return cast(name, default=default)
    except (ValueError, TypeError, ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"Environment variable {name}: {exc}") from exc


def _networks(name: str) -> list[str]:
    """A comma-separated list of IP addresses or networks, each checked."""
    values = _typed(name, env.list, [])
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ImproperlyConfigured(f"Environment variable {name}: {exc}") from exc
    return values


DEBUG = _typed("DEBUG", env.bool, False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Environment variable SECRET_KEY must be set when DEBUG is off "
            "(set DEBUG=1 for a development default)."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-" + "x" * 20

ALLOWED_HOSTS = _typed("ALLOWED_HOSTS", env.list, ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = _typed("CSRF_TRUSTED_ORIGINS", env.list, [])

INSTALLED_APPS = [
    # The admin site wants a two-factor verified session (creditledger/accounts/admin_site.py).
    "creditledger.accounts.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "creditledger.ledger",
    "creditledger.api",
    "creditledger.ops",
    "traders",
    "penalties",
    # Staff sign-in: lockout (django-axes), CSP, second factor (django-otp).
    "axes",
    "csp",
    "creditledger.guard",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "creditledger.accounts",
]

MIDDLEWARE = [
    # Probes and /metrics first (no host or HTTPS checks for them), then the request id and
    # log context, then latency: see creditledger/ops/middleware.py.
    "creditledger.ops.middleware.OpsEndpointsMiddleware",
    "creditledger.ops.middleware.RequestContextMiddleware",
    "creditledger.ops.middleware.RequestMetricsMiddleware",
    # Under /api/ every answer is JSON, errors from below included: see creditledger/api/errors.py.
    "creditledger.api.errors.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # beside the other security headers
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's, except that /api/ always answers in English: see creditledger/i18n.py.
    "creditledger.i18n.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every staff URL wants a session verified with a TOTP or backup code; the admin site
    # refuses an unverified session too, so this middleware is not the only guard.
    "django_otp.middleware.OTPMiddleware",
    "creditledger.accounts.middleware.StaffTwoFactorMiddleware",
    # Records sign-ins after the view returns, outside the view's transaction.
    "creditledger.guard.middleware.SignInRecordMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]
# axes first: it refuses a locked (username, address) pair before a password is checked.
AUTHENTICATION_BACKENDS = [
    "creditledger.guard.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "creditledger.urls"

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

WSGI_APPLICATION = "creditledger.wsgi.application"

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": _typed("DATABASE_URL", env.db_url, f"sqlite:///{VAR_DIR / 'creditledger.sqlite3'}"),
}
if DATABASES["default"].get("ENGINE") not in {"django.db.backends.sqlite3", "django.db.backends.postgresql"}:
    raise ImproperlyConfigured(
        "Environment variable DATABASE_URL: use postgres://user@host:port/name or sqlite:///path"
    )
# A streaming replica for the platform API's read-only lookups and change feed (explicit
# .using(read_db()) in creditledger/api/selectors.py; see creditledger/routers.py). Tests
# never create it: it mirrors the default test database.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = _typed("DATABASE_REPLICA_URL", env.db_url, None)
    if DATABASES["replica"].get("ENGINE") != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured(
            "Environment variable DATABASE_REPLICA_URL: use the same engine as DATABASE_URL"
        )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
API_READ_DATABASE = "replica" if "replica" in DATABASES else "default"
DATABASE_ROUTERS = ["creditledger.routers.PrimaryReplicaRouter"]
CONN_MAX_AGE = _typed("CONN_MAX_AGE", env.int, 60)
for _db in DATABASES.values():
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web process read while the worker writes; IMMEDIATE takes the
        # write lock at BEGIN, so two writers queue (busy timeout) instead of failing
        # on lock upgrade. The write lock also serialises ledger appends on SQLite.
        _db.setdefault("OPTIONS", {}).update(
            {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    else:
        _db["CONN_MAX_AGE"] = CONN_MAX_AGE
        _db["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation ---------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]
# Staff pages show dates in the active language's formats (creditledger/formats: English
# short dates are ISO). Numbers are not grouped: scores, counts and ids read better plain,
# and Chinese has no thousands separator in Django's formats anyway.
FORMAT_MODULE_PATH = ["creditledger.formats"]


def _check_time_zone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(f"Environment variable TIME_ZONE: unknown zone {name!r}") from exc


_check_time_zone(TIME_ZONE)
if LANGUAGE_CODE.lower() not in {code for code, _ in LANGUAGES}:
    raise ImproperlyConfigured(
        f"Environment variable LANGUAGE_CODE: {LANGUAGE_CODE!r} is not one of "
        f"{', '.join(code for code, _ in LANGUAGES)}"
    )

# --- Static and uploaded files ----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# Evidence files: refused past this size while they stream in.
EVIDENCE_MAX_BYTES = _typed("EVIDENCE_MAX_BYTES", env.int, 20 * 1024 * 1024)
if EVIDENCE_MAX_BYTES <= 0:
    raise ImproperlyConfigured("Environment variable EVIDENCE_MAX_BYTES must be a positive integer")
EVIDENCE_CONTENT_TYPES = _typed(
    "EVIDENCE_CONTENT_TYPES",
    env.list,
    [
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "application/pdf",
        "video/mp4",
        "text/plain",
        "application/zip",
    ],
)
# A violation is recorded only while it can still be penalised: the Administrative Penalty
# Law (2021, art. 36) bars penalties two years after the act, five where life, health or
# financial security was at stake (counterfeit and substandard goods often are).
VIOLATION_MAX_AGE_YEARS = _typed("VIOLATION_MAX_AGE_YEARS", env.int, 5)
if VIOLATION_MAX_AGE_YEARS < 1:
    raise ImproperlyConfigured("VIOLATION_MAX_AGE_YEARS must be a positive integer")
# Django keeps uploads above this in a temporary file, so large evidence never sits in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The platform API refuses a body from its Content-Length before reading it (413, JSON):
# JSON bodies up to API_MAX_BODY_BYTES, multipart reports up to API_MAX_UPLOAD_BYTES
# (API_MAX_EVIDENCE_FILES files of EVIDENCE_MAX_BYTES, and the form around them).
API_MAX_BODY_BYTES = _typed("API_MAX_BODY_BYTES", env.int, 1024 * 1024)
API_MAX_EVIDENCE_FILES = _typed("API_MAX_EVIDENCE_FILES", env.int, 10)
API_MAX_UPLOAD_BYTES = API_MAX_EVIDENCE_FILES * EVIDENCE_MAX_BYTES + API_MAX_BODY_BYTES
if min(API_MAX_BODY_BYTES, API_MAX_EVIDENCE_FILES) < 1:
    raise ImproperlyConfigured("API_MAX_BODY_BYTES and API_MAX_EVIDENCE_FILES must be positive integers")

# --- Ledger -----------------------------------------------------------------------------
# Which key signs ledger checkpoints: "file", an Ed25519 seed held by the process (below;
# make run's zero-setup default), or "pkcs11", a key pair on an HSM that never leaves it.
LEDGER_SIGNER = env.str("LEDGER_SIGNER", default="file")
if LEDGER_SIGNER not in ("file", "pkcs11"):
    raise ImproperlyConfigured(f"Environment variable LEDGER_SIGNER: {LEDGER_SIGNER!r} is not file or pkcs11")
# LEDGER_SIGNER=pkcs11: the vendor's PKCS#11 module (.so), the token's label, the user PIN
# (or a file holding it, mode 0400) and the label of the Ed25519 key pair on the token
# (`manage.py ledger_hsm_keygen` generates it). Read at first use and by `manage.py check`.
LEDGER_PKCS11_MODULE = env.str("LEDGER_PKCS11_MODULE", default="")
LEDGER_PKCS11_TOKEN = env.str("LEDGER_PKCS11_TOKEN", default="")
LEDGER_PKCS11_PIN = env.str("LEDGER_PKCS11_PIN", default="")
LEDGER_PKCS11_PIN_FILE = env.str("LEDGER_PKCS11_PIN_FILE", default="")
LEDGER_PKCS11_KEY_LABEL = env.str("LEDGER_PKCS11_KEY_LABEL", default="ledger-checkpoints")
# LEDGER_SIGNER=file: the Ed25519 seed (base64, 32 bytes) that signs ledger checkpoints.
# Never stored in the database. When unset a development key is generated once under var/.
LEDGER_SIGNING_KEY = env.str("LEDGER_SIGNING_KEY", default="")
LEDGER_SIGNING_KEY_FILE = Path(
    env.str("LEDGER_SIGNING_KEY_FILE", default=str(VAR_DIR / "ledger-signing.key"))
)
LEDGER_ORIGIN = env.str("LEDGER_ORIGIN", default="creditledger.example/ledger")
LEDGER_CHECKPOINT_SECONDS = _typed("LEDGER_CHECKPOINT_SECONDS", env.int, 300)
# Verifier keys (name+keyhash+base64, as /ledger/public-key gives `verifier_key`) of signing
# keys retired by a rotation: checkpoints they signed still verify. Comma-separated.
LEDGER_RETIRED_VERIFIER_KEYS = _typed("LEDGER_RETIRED_VERIFIER_KEYS", env.list, [])
# Witnesses' verifier keys (cosignature/v1: name+id+base64) verify_ledger trusts when given
# no --witness-key: kept outside the database, which a rewrite could reach. Empty: the
# registered witnesses' keys. Comma-separated.
LEDGER_WITNESS_KEYS = _typed("LEDGER_WITNESS_KEYS", env.list, [])
# Who gives entries their seq, chain hash and tree position (creditledger/ledger/sealer.py):
# "process", the sealer (`manage.py ledger_seal`, one per installation, beside the workers),
# or "inline", each change in its own transaction, one writer at a time (the test suite).
LEDGER_SEALER = env.str("LEDGER_SEALER", default="process")
if LEDGER_SEALER not in ("process", "inline"):
    raise ImproperlyConfigured(f"Environment variable LEDGER_SEALER: {LEDGER_SEALER!r} is not process/inline")

# --- Reassessment -----------------------------------------------------------------------
# Traders per transaction in the bulk runs (reassess --all, the nightly job, the sweeper):
# each batch holds its traders' row locks for about as long as it takes to write them.
REASSESS_BATCH = _typed("REASSESS_BATCH", env.int, 2000)
if REASSESS_BATCH < 1:
    raise ImproperlyConfigured("Environment variable REASSESS_BATCH must be at least 1")

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
elif not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://", "memory://")):
    raise ImproperlyConfigured(
        f"Environment variable CELERY_BROKER_URL: unsupported scheme in {CELERY_BROKER_URL!r}"
    )
CELERY_TASK_ALWAYS_EAGER = _typed("CELERY_TASK_ALWAYS_EAGER", env.bool, False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Reliability: a task is acknowledged only after it ran, and given back if its worker dies;
# each worker process holds one message at a time, so a crash strands at most one.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# The longest task may run this long; retries wait at most CELERY_RETRY_BACKOFF_MAX. The
# broker's visibility timeout must exceed both, or Redis hands a running task to a second
# worker.
CELERY_TASK_TIME_LIMIT = _typed("CELERY_TASK_TIME_LIMIT", env.int, 900)
if CELERY_TASK_TIME_LIMIT < 2:
    raise ImproperlyConfigured("Environment variable CELERY_TASK_TIME_LIMIT must be at least 2 seconds")
# The soft limit lets a task roll back cleanly before the hard kill.
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - min(60, CELERY_TASK_TIME_LIMIT // 10 + 1)
CELERY_RETRY_BACKOFF_MAX = _typed("CELERY_RETRY_BACKOFF_MAX", env.int, 600)
CELERY_VISIBILITY_TIMEOUT = _typed(
    "CELERY_VISIBILITY_TIMEOUT", env.int, 2 * (CELERY_TASK_TIME_LIMIT + CELERY_RETRY_BACKOFF_MAX)
)
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT + CELERY_RETRY_BACKOFF_MAX:
    raise ImproperlyConfigured(
        "Environment variable CELERY_VISIBILITY_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT + "
        "CELERY_RETRY_BACKOFF_MAX, or Redis redelivers running tasks"
    )
CELERY_MAX_DELIVERIES = _typed("CELERY_MAX_DELIVERIES", env.int, 5)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # How often a worker looks for messages a dead worker left unacknowledged.
        "unacked_restore_interval": _typed("CELERY_UNACKED_RESTORE_INTERVAL", env.int, 60),
        "unacked_restore_throttle": 1,
        # A broker that vanishes without closing the socket must not hang a publish.
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
    }
# Beat runs in UTC. 18:30 UTC is 02:30 in Beijing: the quiet hours.
CELERY_BEAT_SCHEDULE = {
    "ledger-checkpoint": {
        "task": "creditledger.ledger.tasks.ledger_checkpoint",
        "schedule": float(LEDGER_CHECKPOINT_SECONDS),
        "options": {"expires": LEDGER_CHECKPOINT_SECONDS},  # after an outage: one run, not a backlog
    },
    "sweep-reassessments": {
        "task": "penalties.tasks.sweep_reassessments",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "nightly-reassess": {
        "task": "penalties.tasks.nightly_reassess",
        "schedule": crontab(hour=18, minute=30),
        "options": {"expires": 6 * 3600},
    },
    "webhooks-dispatch": {
        "task": "creditledger.api.tasks.webhooks_dispatch",
        "schedule": 10.0,
        "options": {"expires": 10},
    },
    "idempotency-purge": {
        "task": "creditledger.api.tasks.idempotency_purge",
        "schedule": crontab(hour=19, minute=15),
        "options": {"expires": 6 * 3600},
    },
    "exports-sweep": {
        "task": "penalties.exports.tasks.exports_sweep",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "exports-expire": {
        "task": "penalties.exports.tasks.exports_expire",
        "schedule": crontab(minute=5),
        "options": {"expires": 3600},
    },
}
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "penalties.tasks.*": {"queue": "scoring"},
    "creditledger.ledger.tasks.*": {"queue": "scoring"},
    "creditledger.api.tasks.*": {"queue": "webhooks"},
    "penalties.exports.tasks.*": {"queue": "exports"},
    # Not behind the long jobs it watches: it must run when every exports worker is stuck.
    "penalties.exports.tasks.exports_sweep": {"queue": "celery"},
}

# --- Cache ------------------------------------------------------------------------------
CACHES = {"default": _typed("CACHE_URL", env.cache_url, "locmemcache://")}
# The platform API's per-key rate limit is counted in this Redis (creditledger/api/ratelimit.py):
# the cache's own Redis unless set; empty (a local-memory cache) counts per process.
_cache_location = CACHES["default"].get("LOCATION", "")
API_THROTTLE_REDIS_URL = _typed(
    "API_THROTTLE_REDIS_URL",
    env.str,
    _cache_location
    if "redis" in CACHES["default"]["BACKEND"].lower() and isinstance(_cache_location, str)
    else "",
)
# How long a web process trusts an API key it checked: the bound on revoking one.
API_KEY_CACHE_SECONDS = _typed("API_KEY_CACHE_SECONDS", env.float, 5.0)
if not 0 <= API_KEY_CACHE_SECONDS <= 60:
    raise ImproperlyConfigured("API_KEY_CACHE_SECONDS must be between 0 and 60")

# --- Security ---------------------------------------------------------------------------
SECURE_SSL_REDIRECT = _typed("SECURE_SSL_REDIRECT", env.bool, not DEBUG)
SESSION_COOKIE_SECURE = _typed("SESSION_COOKIE_SECURE", env.bool, not DEBUG)
CSRF_COOKIE_SECURE = _typed("CSRF_COOKIE_SECURE", env.bool, not DEBUG)
SECURE_HSTS_SECONDS = _typed("SECURE_HSTS_SECONDS", env.int, 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _typed("SECURE_HSTS_INCLUDE_SUBDOMAINS", env.bool, not DEBUG)
SECURE_HSTS_PRELOAD = _typed("SECURE_HSTS_PRELOAD", env.bool, not DEBUG)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if _typed("TRUST_X_FORWARDED_PROTO", env.bool, False) else None
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = _typed("SESSION_COOKIE_AGE", env.int, 8 * 3600)
X_FRAME_OPTIONS = "DENY"

# --- Sign-in guard: lockout, Content-Security-Policy, cookies ---------------------------
# Lockout: AXES_FAILURE_LIMIT failed sign-ins of one username from one address lock that
# pair (and only that pair) for AXES_COOLOFF minutes; every refused attempt restarts the wait.
AXES_FAILURE_LIMIT = _typed("AXES_FAILURE_LIMIT", env.int, 5)
AXES_COOLOFF = _typed("AXES_COOLOFF", env.int, 15)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF < 1:
    raise ImproperlyConfigured("Environment variables AXES_FAILURE_LIMIT and AXES_COOLOFF must be at least 1")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "creditledger.guard.views.lockout"
AXES_CLIENT_IP_CALLABLE = "creditledger.guard.addresses.client_address"
# Counters live in the shared cache (Redis) so every web process sees the same count. A
# per-process cache (make run's locmem default) would let each process count alone: then
# axes keeps them in the database instead, which every process shares too.
_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
}
if CACHES["default"]["BACKEND"] in _LOCAL_CACHES:
    AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
else:
    AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CACHE = "default"
# The attempt lists in the admin only have rows with the database handler.
AXES_ENABLE_ADMIN = AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"

# Behind a reverse proxy REMOTE_ADDR is the proxy. Only when it is one of these addresses
# or networks is X-Forwarded-For read (right to left, skipping trusted hops); never else,
# since a client writes that header itself.
TRUSTED_PROXIES = _networks("TRUSTED_PROXIES")

# Content-Security-Policy. Scripts and styles only from our own origin (static files); no
# inline script, <style> or style attribute in the staff pages (a test walks them), so
# style-src needs no 'unsafe-inline'. Django's admin writes an inline <style> only on a
# change list with actions_on_top and actions_on_bottom both off, which no admin here
# does; a page that needs inline code gives it the request's nonce ({{ request.csp_nonce }}).
# Images: our own and data: URIs; QR codes and charts are inline SVG.
# (Read into private names: django-csp 4 refuses any CSP_* setting as an old-style one.)
_csp_report_only = _typed("CSP_REPORT_ONLY", env.bool, False)
_csp_report_uri = env.str("CSP_REPORT_URI", default="")
_csp_policy = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        **({"report-uri": [_csp_report_uri]} if _csp_report_uri else {}),
    }
}
# CSP_REPORT_ONLY=1 for a staged rollout: browsers report what the policy would block
# (to CSP_REPORT_URI) and block nothing.
if _csp_report_only:
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp_policy
    CONTENT_SECURITY_POLICY = None
else:
    CONTENT_SECURITY_POLICY = _csp_policy

# Cookies. With the Secure flag the names carry the __Host- prefix: the browser then
# refuses them unless set over HTTPS for this exact host and path /, so a sibling
# subdomain cannot plant a session or CSRF cookie.
_SAMESITE = {"Lax", "Strict", "None"}
SESSION_COOKIE_SAMESITE = _typed("SESSION_COOKIE_SAMESITE", env.str, "Lax")
CSRF_COOKIE_SAMESITE = _typed("CSRF_COOKIE_SAMESITE", env.str, "Lax")
for _name, _value, _secure in (
    ("SESSION_COOKIE_SAMESITE", SESSION_COOKIE_SAMESITE, SESSION_COOKIE_SECURE),
    ("CSRF_COOKIE_SAMESITE", CSRF_COOKIE_SAMESITE, CSRF_COOKIE_SECURE),
):
    if _value not in _SAMESITE:
        raise ImproperlyConfigured(f"Environment variable {_name}: {_value!r} is not Lax, Strict or None")
    if _value == "None" and not _secure:
        raise ImproperlyConfigured(f"Environment variable {_name}: None needs the cookie's Secure flag")
SESSION_COOKIE_NAME = _typed(
    "SESSION_COOKIE_NAME", env.str, "__Host-sessionid" if SESSION_COOKIE_SECURE else "sessionid"
)
CSRF_COOKIE_NAME = _typed(
    "CSRF_COOKIE_NAME", env.str, "__Host-csrftoken" if CSRF_COOKIE_SECURE else "csrftoken"
)
for _name, _value, _secure in (
    ("SESSION_COOKIE_NAME", SESSION_COOKIE_NAME, SESSION_COOKIE_SECURE),
    ("CSRF_COOKIE_NAME", CSRF_COOKIE_NAME, CSRF_COOKIE_SECURE),
):
    if _value.startswith(("__Host-", "__Secure-")) and not _secure:
        raise ImproperlyConfigured(
            f"Environment variable {_name}: a {_value.split('-')[0]}- name needs the Secure flag"
        )
# Nothing of ours reads the CSRF cookie from JavaScript (forms carry the token).
CSRF_COOKIE_HTTPONLY = _typed("CSRF_COOKIE_HTTPONLY", env.bool, True)
SESSION_EXPIRE_AT_BROWSER_CLOSE = _typed("SESSION_EXPIRE_AT_BROWSER_CLOSE", env.bool, True)

# --- REST framework / platform API -------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["creditledger.api.auth.PlatformKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["creditledger.api.auth.IsPlatform"],
    "DEFAULT_THROTTLE_CLASSES": ["creditledger.api.auth.PerKeyThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "apikey": _typed("API_THROTTLE_RATE", env.str, "6000/min"),
        # The ledger's public reads without a key, per client address.
        "public": _typed("API_PUBLIC_THROTTLE_RATE", env.str, "600/min"),
        # Witnesses' cosignature posts, per client address: a witness posts once a checkpoint.
        "witness": _typed("WITNESS_THROTTLE_RATE", env.str, "60/min"),
    },
    "DEFAULT_RENDERER_CLASSES": ["creditledger.api.parsers.JSONRenderer"],  # orjson
    "DEFAULT_PARSER_CLASSES": [
        "creditledger.api.parsers.JSONParser",  # orjson, strict: see its docstring
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "creditledger.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "creditledger platform API",
    "DESCRIPTION": "Trader status, bulk lookups, the change feed, reports and acknowledgements.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1: a nullable object is oneOf [its schema, {"type": "null"}], which strict validators
    # accept; 3.0's allOf + nullable without a type they read as "never null".
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "creditledger.api.openapi.add_rate_limit_headers",
        "creditledger.api.openapi.state_cross_field_rules",
    ],
}
# The header platforms send their key in: "Authorization: Api-Key <key>".
API_KEY_CUSTOM_HEADER = None
API_BULK_LIMIT = 1000
# Auditor exports: how long a finished file stays downloadable, and when a platform's
# missing acknowledgement counts as overdue in the compliance summary.
EXPORTS_KEEP_DAYS = _typed("EXPORTS_KEEP_DAYS", env.int, 7)
REPORTS_ACK_OVERDUE_DAYS = _typed("REPORTS_ACK_OVERDUE_DAYS", env.int, 3)
# The export sweeper (every minute): a running export whose worker has written nothing for
# EXPORT_STUCK_SECONDS, or a requested one no worker took for EXPORT_REQUEUE_SECONDS, is
# queued again, up to EXPORT_MAX_ATTEMPTS in all; then it fails, saying why.
EXPORT_STUCK_SECONDS = _typed("EXPORT_STUCK_SECONDS", env.int, 300)
EXPORT_REQUEUE_SECONDS = _typed("EXPORT_REQUEUE_SECONDS", env.int, 900)
EXPORT_MAX_ATTEMPTS = _typed("EXPORT_MAX_ATTEMPTS", env.int, 3)
if min(EXPORT_STUCK_SECONDS, EXPORT_REQUEUE_SECONDS) < 1 or EXPORT_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured(
        "Environment variables EXPORT_STUCK_SECONDS, EXPORT_REQUEUE_SECONDS and EXPORT_MAX_ATTEMPTS "
        "must be at least 1"
    )
# How long a POST's stored answer replays a repeated Idempotency-Key.
IDEMPOTENCY_KEEP_DAYS = _typed("IDEMPOTENCY_KEEP_DAYS", env.int, 7)
WEBHOOK_MAX_ATTEMPTS = _typed("WEBHOOK_MAX_ATTEMPTS", env.int, 8)
WEBHOOK_TIMEOUT_SECONDS = _typed("WEBHOOK_TIMEOUT_SECONDS", env.float, 10.0)
# Endpoints on private, loopback or link-local addresses are refused unless allowed here
# (tests allow loopback): a webhook must not become a way into the regulator's network.
WEBHOOK_ALLOW_LOOPBACK = _typed("WEBHOOK_ALLOW_LOOPBACK", env.bool, False)
WEBHOOK_ALLOW_PRIVATE = _typed("WEBHOOK_ALLOW_PRIVATE", env.bool, False)

# --- Operations: logs, health, metrics, static files, secrets rotation --------------------
# LOG_FORMAT=json: one JSON object per line with request_id, actor, trader (web) and
# task_name, task_id (Celery); plain lines otherwise (make run).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"Environment variable LOG_FORMAT: {LOG_FORMAT!r} is not plain or json")
# One line per request (method, path, status, view, duration) on the creditledger.request
# logger; runserver logs requests itself, so the default is on with JSON logs only.
LOG_REQUESTS = _typed("LOG_REQUESTS", env.bool, LOG_FORMAT == "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "creditledger.ops.logs.ContextFilter"}},
    "formatters": {
        "plain": {"()": "creditledger.ops.logs.PlainFormatter"},
        **({"json": {"()": "creditledger.ops.logs.JsonFormatter"}} if LOG_FORMAT == "json" else {}),
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": LOG_FORMAT}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# /readyz: a worker must have run the heartbeat tick from each of these queues, and beat
# must have sent one, recently enough. Beat sends the tick every HEALTH_TICK_SECONDS.
HEALTH_WORKER_QUEUES = _typed("HEALTH_WORKER_QUEUES", env.list, ["celery", "scoring", "webhooks", "exports"])
HEALTH_TICK_SECONDS = _typed("HEALTH_TICK_SECONDS", env.int, 30)
HEALTH_WORKER_MAX_AGE = _typed("HEALTH_WORKER_MAX_AGE", env.int, 180)
HEALTH_BEAT_MAX_AGE = _typed("HEALTH_BEAT_MAX_AGE", env.int, 120)
HEALTH_BROKER_TIMEOUT = _typed("HEALTH_BROKER_TIMEOUT", env.float, 2.0)
if HEALTH_TICK_SECONDS < 1 or min(HEALTH_WORKER_MAX_AGE, HEALTH_BEAT_MAX_AGE) <= HEALTH_TICK_SECONDS:
    raise ImproperlyConfigured(
        "Environment variables HEALTH_WORKER_MAX_AGE and HEALTH_BEAT_MAX_AGE must exceed HEALTH_TICK_SECONDS"
    )
CELERY_BEAT_SCHEDULE.update(
    {
        f"ops-tick-{queue}": {
            "task": "creditledger.ops.tasks.beat_tick",
            "schedule": float(HEALTH_TICK_SECONDS),
            "kwargs": {"queue": queue},
            # A tick that waited longer than its interval proves nothing; the next one will.
            "options": {"queue": queue, "expires": HEALTH_TICK_SECONDS},
        }
        for queue in HEALTH_WORKER_QUEUES
    }
)

# /metrics: a bearer token, or client addresses (IPs or networks, comma-separated); with
# neither it answers 404. CELERY_METRICS_PORT makes each worker serve its own.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = _networks("METRICS_ALLOWED_IPS")
CELERY_METRICS_PORT = _typed("CELERY_METRICS_PORT", env.int, 0)
CELERY_METRICS_ADDR = env.str("CELERY_METRICS_ADDR", default="127.0.0.1")

# Static files: WhiteNoise serves them from STATIC_ROOT (collectstatic) with hashed,
# compressed names and far-future caching.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "creditledger.ops.storage.StaticFilesStorage"},
}

# Rotating SECRET_KEY: put the old key here (comma-separated) while sessions and signed
# values made with it expire, then drop it.
SECRET_KEY_FALLBACKS = _typed("SECRET_KEY_FALLBACKS", env.list, [])

# --- Staff two-factor sign-in (creditledger/accounts) -----------------------------------
# Paths (as the app sees them, without a SCRIPT_NAME) behind the second factor; the admin's
# own login and logout pages stay open. /api/ (API keys), probes and /ledger/ are outside.
STAFF_PATH_PREFIXES = ("/admin/", "/audit/", "/penalties/")
# The name an authenticator app shows next to the code.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="creditledger")
# django-otp's throttling: after n wrong codes in a row, wait 2^(n-1) seconds (capped).
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# Never show a device's secret key in the admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
