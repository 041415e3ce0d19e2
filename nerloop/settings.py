"""All settings come from environment variables, read through small typed helpers.

A malformed value raises ImproperlyConfigured at start-up instead of being ignored.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_raw(name: str) -> str | None:
    """The variable's value, or the contents of the file ``NAME_FILE`` names (a Docker or
    systemd secret), for every setting whatever its type; None when neither is set."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from None
    return os.environ.get(name)


def env_str(name: str, default: str = "") -> str:
    raw = env_raw(name)
    return default if raw is None else raw


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_raw(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = env_raw(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum {minimum}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug"
elif SECRET_KEY == "change-me" and not DEBUG:  # .env.example's placeholder, copied as it is
    raise ImproperlyConfigured(
        "SECRET_KEY is still .env.example's placeholder; set a long random one: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
# Behind a reverse proxy (docs/platform.md, "Running it for a team"):
# NERLOOP_HTTPS_PROXY=1: a proxy that terminates TLS and sets X-Forwarded-Proto, so requests
# are known to be HTTPS (the login form's CSRF origin check passes) and cookies are Secure;
# NERLOOP_TRUSTED_PROXIES=N: how many proxies append to X-Forwarded-For, so the login lockout
# counts the client's address, not the proxy's; NERLOOP_CSRF_TRUSTED_ORIGINS: other origins
# (scheme://host[:port]) whose forms are accepted.
if env_bool("NERLOOP_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
TRUSTED_PROXIES = env_int("NERLOOP_TRUSTED_PROXIES", 0)
CSRF_TRUSTED_ORIGINS = env_list("NERLOOP_CSRF_TRUSTED_ORIGINS", "")

# A relative folder is the project folder's (not the working directory's), so that every
# process (web, workers, beat, a command run from elsewhere) finds the same bundles.
DATA_DIR = (BASE_DIR / env_str("NERLOOP_DATA_DIR", "var")).resolve()
BUNDLE_DIR = DATA_DIR / "bundles"
DEFAULT_BUNDLE = env_str("NERLOOP_DEFAULT_BUNDLE", str(BUNDLE_DIR / "demo"))
DATASETS_DIR = Path(env_str("NERLOOP_DATASETS_DIR", str(BASE_DIR.parent / "shared" / "datasets")))
PREDICT_MAX_CHARS = env_int("NERLOOP_PREDICT_MAX_CHARS", 10_000, minimum=1)
PREDICT_MAX_TEXTS = env_int("NERLOOP_PREDICT_MAX_TEXTS", 256, minimum=1)
# 256 texts of 10,000 characters took 14.8 s in one request; 200,000 is under a second here
PREDICT_MAX_TOTAL_CHARS = env_int("NERLOOP_PREDICT_MAX_TOTAL_CHARS", 200_000, minimum=1)
ORT_THREADS = env_int("NERLOOP_ORT_THREADS", 0)
SERVE_INT8 = env_bool("NERLOOP_SERVE_INT8", True)
# Most model bundles one process keeps loaded; the least recently used one goes first.
MAX_LOADED_BUNDLES = env_int("NERLOOP_MAX_LOADED_BUNDLES", 4, minimum=1)
# Seconds a review-queue item stays assigned to the annotator who took it.
ASSIGNMENT_TTL = env_int("NERLOOP_ASSIGNMENT_TTL", 1800, minimum=10)
# Largest upload accepted by the document import endpoint, in bytes.
IMPORT_MAX_BYTES = env_int("NERLOOP_IMPORT_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
# Longest document an import accepts, in characters (an annotator reads it on one page).
IMPORT_MAX_CHARS = env_int("NERLOOP_IMPORT_MAX_CHARS", 100_000, minimum=1)
# Largest non-file request body (JSON bulk document creation), in bytes.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("NERLOOP_MAX_BODY_BYTES", 20 * 1024 * 1024, minimum=1024)
# Wrong passwords for one account from one address (login page and API token alike) before
# that account is locked out there for the rest of the window; an address is locked out of
# every account after five times as many (nerloop/logins.py).
LOGIN_FAILURES = env_int("NERLOOP_LOGIN_FAILURES", 10, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("NERLOOP_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# Retraining (learner/retraining.py): seconds of training of a run from scratch and of one
# warm-started from the active model (fine-tuning converges in a few epochs, and the loop
# should turn around in about two minutes), the hard Celery time limit of a run, and how
# often beat checks the feedback pools.
TRAIN_TIME_BUDGET = env_int("NERLOOP_TRAIN_TIME_BUDGET", 300, minimum=1)
RETRAIN_TIME_BUDGET = env_int("NERLOOP_RETRAIN_TIME_BUDGET", 100, minimum=1)
TRAIN_TIME_LIMIT = env_int("NERLOOP_TRAIN_TIME_LIMIT", 1800, minimum=10)
RETRAIN_CHECK_SECONDS = env_int("NERLOOP_RETRAIN_CHECK_SECONDS", 60, minimum=1)
# torch threads of a training run. One by default: torch's OpenMP threads spin, and on a
# 2-core machine shared with web and inference workers two of them ran epochs 15x slower.
TRAIN_THREADS = env_int("NERLOOP_TRAIN_THREADS", 1, minimum=1)
# Milliseconds a web process trusts its cached "which version is active" answer (hot-swap).
ACTIVE_MODEL_TTL_MS = env_int("NERLOOP_ACTIVE_MODEL_TTL_MS", 500)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "annotation",
    "inference",
    "learner",
    "frontend",
]

MIDDLEWARE = [
    "nerloop.health.ProbeMiddleware",  # /healthz and /readyz whatever the Host header
    "django.middleware.security.SecurityMiddleware",
    # Serves STATIC_ROOT (filled by collectstatic) from the app server itself, so gunicorn
    # with DEBUG off needs no separate web server for /static/.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "frontend.middleware.PageLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "nerloop.urls"
WSGI_APPLICATION = "nerloop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'nerloop.sqlite3'}"),
        conn_max_age=env_int("NERLOOP_DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded run has a web server, a worker and beat writing one file: take the write
    # lock when a transaction begins (no upgrade deadlocks), wait for it, let readers through.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "frontend" / "locale"]
TIME_ZONE = env_str("NERLOOP_TIME_ZONE", "UTC")  # whose "today" the activity counts use
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic puts the files WhiteNoise serves; the image sets it outside the data
# volume, so a rebuilt image never serves the previous build's files.
STATIC_ROOT = Path(env_str("NERLOOP_STATIC_ROOT", str(DATA_DIR / "static"))).resolve()
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

REST_FRAMEWORK = {
    # Token first: a caller with no credentials gets 401 with a WWW-Authenticate challenge
    # (the first class decides it; session authentication sends none, which would make 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies only (file uploads name their own parsers), with strings that can be stored
    "DEFAULT_PARSER_CLASSES": ["nerloop.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "nerloop.schema.ErrorsAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "nerloop.pagination.Pages",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "nerloop.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "nerloop API",
    "DESCRIPTION": "Active-learning annotation for Chinese named-entity recognition",
    "VERSION": "1",
    "ENUM_NAME_OVERRIDES": {"DocumentStatusEnum": "annotation.models.Document.Status"},
    # request bodies get their own components: a file upload is binary, read-only fields are
    # not asked for
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from this server (drf-spectacular-sidecar), not a CDN: the docs
    # page works offline and behind firewalls.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
else:
    BROKER_FOLDER = DATA_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://localhost/"  # a host named: kombu warns without one
    CELERY_BROKER_TRANSPORT = "nerloop.broker:Transport"  # messages written whole
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER),
        "data_folder_out": str(BROKER_FOLDER),
        "control_folder": str(BROKER_FOLDER / "control"),
    }
# The cache holds what every web process must agree on (failed logins): Redis when the
# platform has it, files under the data folder for the embedded default.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nerloop",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A training run keeps going when the worker loses the broker for a moment; the message that
# comes back finds the run claimed and does nothing (learner.retraining). Pinned: Celery 6
# turns this on by default, which would cancel the run instead.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_DEFAULT_QUEUE = "inference"
# Three queues: `inference` (predictions, the default), `training` (one run at a time) and
# `control`, the short bookkeeping tasks (the periodic checks, queue re-selection) that must
# not wait behind a 50,000-document prediction backlog. Workers take from their queues in
# turn, so a worker that also consumes `control` runs such a task next, whatever is queued.
CELERY_TASK_ROUTES = {
    "learner.tasks.*": {"queue": "training"},
    "learner.check_projects": {"queue": "control"},
    "learner.select_batch": {"queue": "control"},
    "annotation.sweep_unpredicted": {"queue": "control"},
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-unpredicted": {"task": "annotation.sweep_unpredicted", "schedule": 600.0},
}
CELERY_TIMEZONE = TIME_ZONE

LOG_LEVEL = env_str("NERLOOP_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"NERLOOP_LOG_LEVEL={LOG_LEVEL!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
