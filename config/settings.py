"""Settings, read from the environment (and an optional `.env` file) with django-environ."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1"]),
    SECRET_KEY=(str, ""),
)
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env("DEBUG")


def _secret_key() -> str:
    key = env("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development only: generate once and keep it, so sessions survive a restart.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(exist_ok=True)
        path.write_text(get_random_secret_key())
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env("ALLOWED_HOSTS")

INSTALLED_APPS = [
    # django.contrib.admin, its default site carrying Admin > Backup (backup/adminpage).
    "backup.adminpage.apps.BackupAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks_db",
    "masterdata",
    "tenants",
    "backup",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while a long import writes. Transactions begin IMMEDIATE, so
    # that an import takes the write lock at once instead of failing to upgrade a read lock;
    # an export's begins deferred and takes no write lock (`backup.dbsession.export_transaction`).
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL;")
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
else:
    # A worker keeps its connection between jobs (a new PostgreSQL backend starts with cold
    # catalog caches, which a small tenant's backup would pay for again each time); a
    # connection that broke is replaced at the next job or request, not used.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=600))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
MEDIA_URL = "media/"
# Uploaded attachment files (the default storage).
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Uploaded backups between their preview and their import (backup.uploads).
    "backup_uploads": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env.path("BACKUP_UPLOAD_DIR", default=str(VAR_DIR / "uploads")),
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    },
}
# How long an uploaded backup waits for its import after the preview.
# Stored backups: the file system under var/backups (files readable by the server's user only,
# outside every served URL), or S3 (any S3-compatible server) when BACKUP_S3_BUCKET is set.
BACKUP_S3_BUCKET = env.str("BACKUP_S3_BUCKET", default="")
if BACKUP_S3_BUCKET:
    STORAGES["backups"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BACKUP_S3_BUCKET,
            "location": env.str("BACKUP_S3_PREFIX", default="backups"),
            "endpoint_url": env.str("BACKUP_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("BACKUP_S3_REGION", default="") or None,
            "access_key": env.str("BACKUP_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("BACKUP_S3_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    STORAGES["backups"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env.path("BACKUP_STORAGE_DIR", default=str(VAR_DIR / "backups")),
            "base_url": None,
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    }
# Where a worker writes a backup before the storage receives it whole.
BACKUP_SPOOL_DIR = env.path("BACKUP_SPOOL_DIR", default=str(VAR_DIR / "spool"))
# zstd's compression level of stored backups (1-19; higher is smaller and slower).
BACKUP_ZSTD_LEVEL = env.int("BACKUP_ZSTD_LEVEL", default=1)
# Stored backups encrypted at rest (age) to these public keys when set; the workers decrypt them
# (restores, drills) with the secret keys in BACKUP_AGE_IDENTITY_FILE.
BACKUP_AGE_RECIPIENTS = env.list("BACKUP_AGE_RECIPIENTS", default=[])
BACKUP_AGE_IDENTITY_FILE = env.str("BACKUP_AGE_IDENTITY_FILE", default="")
# A tenant's own public keys, as JSON {"<tenant slug>": ["age1...", ...]}: its stored backups are
# encrypted to them too (only while BACKUP_AGE_RECIPIENTS is set), so that its admins can open
# the files they download with their own key.
BACKUP_AGE_TENANT_RECIPIENTS = env.json("BACKUP_AGE_TENANT_RECIPIENTS", default={})
# pyrage encrypts and decrypts with a passphrase only in memory: the largest such file (bytes,
# compressed); encryption to age public keys streams and has no limit.
BACKUP_PASSPHRASE_MAX_BYTES = env.int("BACKUP_PASSPHRASE_MAX_BYTES", default=256 * 1024**2)
BACKUP_DAILY_LIMIT = env.int("BACKUP_DAILY_LIMIT", default=10)
BACKUP_DOWNLOAD_LINK_SECONDS = env.int("BACKUP_DOWNLOAD_LINK_SECONDS", default=600)
# A running job's worker writes a heartbeat every BACKUP_JOB_HEARTBEAT_SECONDS; another machine
# takes the job for dead after BACKUP_JOB_LEASE_SECONDS without one (the worker's own machine
# knows at once, from its process).
BACKUP_JOB_HEARTBEAT_SECONDS = env.float("BACKUP_JOB_HEARTBEAT_SECONDS", default=5.0)
BACKUP_JOB_LEASE_SECONDS = env.float("BACKUP_JOB_LEASE_SECONDS", default=120.0)
# The address of the app in emails (links to Admin > Backup).
BACKUP_SITE_URL = env.str("BACKUP_SITE_URL", default="http://127.0.0.1:8000")
MAILERS = {
    "default": {
        "BACKEND": env.str(
            "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
        )
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="backups@localhost")

# Background work (Django's tasks framework): "db" is django-tasks-db (`manage.py db_worker`),
# "rq" is RQ on Redis (`manage.py rqworker`), "immediate" runs each job inside the request.
BACKUP_TASK_BACKEND = env.str("BACKUP_TASK_BACKEND", default="db")
TASKS = {
    "default": {
        "BACKEND": {
            "db": "django_tasks_db.DatabaseBackend",
            "rq": "django_tasks_rq.RQBackend",
            "immediate": "django.tasks.backends.immediate.ImmediateBackend",
        }[BACKUP_TASK_BACKEND]
    }
}
RQ_QUEUES = {"default": {"URL": env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")}}
if BACKUP_TASK_BACKEND == "rq":
    INSTALLED_APPS.append("django_rq")

BACKUP_UPLOAD_TTL_SECONDS = env.int("BACKUP_UPLOAD_TTL_SECONDS", default=3600)
# Largest backup upload accepted by the API and the admin page (answered with 413 above it).
BACKUP_UPLOAD_MAX_BYTES = env.int("BACKUP_UPLOAD_MAX_BYTES", default=2 * 1024**3)
# The most bytes an uploaded backup may have once decompressed (GitLab's guard against archive
# bombs is the same idea): a few KB of gzip can hold gigabytes. Ten times the JSON of a tenant
# of a million meter readings.
BACKUP_UPLOAD_MAX_DECOMPRESSED_BYTES = env.int(
    "BACKUP_UPLOAD_MAX_DECOMPRESSED_BYTES", default=4 * 1024**3
)
# Problems listed with a failed validation; checking stops at ten times as many ("at least").
BACKUP_PROBLEM_LIMIT = env.int("BACKUP_PROBLEM_LIMIT", default=200)
# Rows of each kind (create, update, delete) per table that a preview shows; 0 shows none.
BACKUP_PREVIEW_SAMPLE_ROWS = env.int("BACKUP_PREVIEW_SAMPLE_ROWS", default=5)
# Rows of each kind (differing, only on one side) per table that compare_backup shows by default.
BACKUP_COMPARE_SAMPLE_ROWS = env.int("BACKUP_COMPARE_SAMPLE_ROWS", default=10)
# The largest attachment file a restore accepts from an archive.
BACKUP_MAX_FILE_BYTES = env.int("BACKUP_MAX_FILE_BYTES", default=2 * 1024**3)
# The most bytes one row of a backup file (or a section that is not a table) may take, decompressed:
# a crafted file cannot make an import hold an unbounded string or list in memory.
BACKUP_MAX_ROW_BYTES = env.int("BACKUP_MAX_ROW_BYTES", default=16 * 1024**2)
# The most master-data rows a backup may hold (they are kept in memory while it is read): the
# tenant's references into the shared catalogue, a few hundred in the demo.
BACKUP_MAX_MASTER_ROWS = env.int("BACKUP_MAX_MASTER_ROWS", default=100_000)
BACKUP_IMPORT_LOCK_WAIT_SECONDS = env.int("BACKUP_IMPORT_LOCK_WAIT_SECONDS", default=10)
# PostgreSQL's COPY-based fast paths; off, PostgreSQL takes the portable path SQLite takes.
BACKUP_FAST_PATHS = env.bool("BACKUP_FAST_PATHS", default=True)
# PostgreSQL's work_mem for the transaction of an export or import (its sorts and hashes).
BACKUP_WORK_MEM = env.str("BACKUP_WORK_MEM", default="128MB")

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns "not authenticated" into 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "backup.api.errors.exception_handler",
}
# Rate limits of exports and of uploads plus imports, on the API and Admin > Backup alike
# (backup.throttles): per user, and per tenant for all its admins together.
# "<count>/<second|minute|hour|day>".
BACKUP_THROTTLE_RATES = {
    "export_per_user": env.str("BACKUP_EXPORT_THROTTLE_RATE", default="60/hour"),
    "import_per_user": env.str("BACKUP_IMPORT_THROTTLE_RATE", default="60/hour"),
    "export_per_tenant": env.str("BACKUP_TENANT_EXPORT_THROTTLE_RATE", default="60/hour"),
    "import_per_tenant": env.str("BACKUP_TENANT_IMPORT_THROTTLE_RATE", default="60/hour"),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tenant backup API",
    "DESCRIPTION": "Export a tenant's data as a versioned JSON backup and import it back.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc are served from this app's static files, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Automatic backups (backup.stored.schedules): every tenant gets a schedule with these defaults
# the first time one is needed, in its own time zone (its settings' timezone, else
# BACKUP_SCHEDULE_TIMEZONE). Each tenant's slot runs at a stable offset within the window.
BACKUP_SCHEDULE_ENABLED = env.bool("BACKUP_SCHEDULE_ENABLED", default=True)
BACKUP_SCHEDULE_TIME = env.str("BACKUP_SCHEDULE_TIME", default="02:00")
BACKUP_SCHEDULE_TIMEZONE = env.str("BACKUP_SCHEDULE_TIMEZONE", default="UTC")
BACKUP_SCHEDULE_WINDOW_MINUTES = env.int("BACKUP_SCHEDULE_WINDOW_MINUTES", default=60)
# A slot whose backup was not enqueued (or, with no worker seen, not started) this long after
# its run time is reported as missed.
BACKUP_SCHEDULE_GRACE_MINUTES = env.int("BACKUP_SCHEDULE_GRACE_MINUTES", default=30)
BACKUP_DRILL_ENABLED = env.bool("BACKUP_DRILL_ENABLED", default=True)
BACKUP_KEEP_LAST = env.int("BACKUP_KEEP_LAST", default=7)
BACKUP_KEEP_MONTHLY = env.int("BACKUP_KEEP_MONTHLY", default=12)
BACKUP_MAX_AGE_DAYS = env.int("BACKUP_MAX_AGE_DAYS", default=365)
