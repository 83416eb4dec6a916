"""Settings of the example project: SQLite, no other service, or PostgreSQL.

``DJANGO_DEBUG=0`` turns DEBUG off; ``DJANGO_ALLOWED_HOSTS`` is a comma-separated list;
``DJANGO_SQLITE_PATH`` moves the database (default ``db.sqlite3`` in the checkout);
``DJANGO_POSTGRES_NAME`` (with ``DJANGO_POSTGRES_HOST``, ``_PORT``, ``_USER``,
``_PASSWORD``) uses that PostgreSQL database instead, with bounded waits (a fleet's
central site: ``POSTGRES_OPTIONS``);
``DJANGO_STATIC_ROOT`` is where ``manage.py collectstatic`` puts the static files
(default ``staticfiles`` in the checkout), which WhiteNoise serves.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "gpu_monitor",
    "gpu_monitor.history",  # samples and events in this database: manage.py gpu_record
    "gpu_monitor.fleet",  # every recorded host's latest state (needs gpu_monitor.history)
    "gpu_monitor.usage",  # GPU-hours per user and idle-held GPUs (needs gpu_monitor.history)
    "gpu_monitor.notify",  # manage.py gpu_notify: tells idle GPUs' holders (needs usage)
]
# With the optional extra gpu-monitor[openapi]: the schema, Swagger UI and ReDoc, all
# served from this server (no CDN: GPU clusters are often offline).
OPENAPI = (
    find_spec("drf_spectacular") is not None and find_spec("drf_spectacular_sidecar") is not None
)
if OPENAPI:
    INSTALLED_APPS += ["drf_spectacular", "drf_spectacular_sidecar"]
# With gpu-monitor[health]: django-health-check at /health/ with the GPU check.
HEALTH = find_spec("health_check") is not None
if HEALTH:
    INSTALLED_APPS += ["health_check"]

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "gpu_monitor example",
    "DESCRIPTION": "NVIDIA GPUs of this machine, read live from NVML.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# With gpu-monitor[example]'s WhiteNoise the server itself serves the static files (the
# dashboard's CSS and JavaScript, Swagger UI, the admin) with DEBUG off and under
# gunicorn, as a deployed project does: `manage.py collectstatic` copies them into
# STATIC_ROOT with a hash in each name (cached for ever) and a gzip copy; with DEBUG on,
# runserver serves them through WhiteNoise too, straight from the apps.
WHITENOISE = find_spec("whitenoise") is not None
if WHITENOISE:
    INSTALLED_APPS.insert(
        INSTALLED_APPS.index("django.contrib.staticfiles"), "whitenoise.runserver_nostatic"
    )
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")  # after SecurityMiddleware
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

ROOT_URLCONF = "example_project.urls"
LOGIN_URL = "rest_framework:login"  # the pages' "Sign in" link; any user, not only staff

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example_project" / "templates"],
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

WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_SQLITE_PATH", BASE_DIR / "db.sqlite3"),
    }
}
# PostgreSQL that stops answering (a frozen server, a host or network gone, a lock) must
# not hold a worker for ever: each wait is bounded and the page answers 503. With
# CONN_MAX_AGE 0 (Django's default) each request connects, so connect_timeout bounds a
# server that does not answer at all; statement_timeout a query that waits (a lock, a
# server overloaded); keepalives and tcp_user_timeout a peer gone from the network. The
# recorder's own connection sets the same (docs/history.md). Behind PgBouncer in
# transaction mode, drop "options" (PgBouncer refuses it) and give the role the timeout
# instead: ALTER ROLE ... SET statement_timeout = '15s' (docs/fleet.md, "Bounded waits on
# the central site"); server-side cursors are off for it.
POSTGRES_OPTIONS = {
    "connect_timeout": 5,  # seconds
    "options": "-c statement_timeout=15000",  # ms: under gunicorn's 30 s worker timeout
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25000,  # ms
}
if os.environ.get("DJANGO_POSTGRES_NAME"):
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["DJANGO_POSTGRES_NAME"],
        "HOST": os.environ.get("DJANGO_POSTGRES_HOST", ""),
        "PORT": os.environ.get("DJANGO_POSTGRES_PORT", ""),
        "USER": os.environ.get("DJANGO_POSTGRES_USER", ""),
        "PASSWORD": os.environ.get("DJANGO_POSTGRES_PASSWORD", ""),
        "CONN_MAX_AGE": 0,
        "DISABLE_SERVER_SIDE_CURSORS": True,  # a pooler in transaction mode
        "OPTIONS": POSTGRES_OPTIONS,
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# manage.py gpu_notify's e-mails: printed on stdout while DEBUG is on; a deployment sets
# EMAIL_HOST (SMTP) and DEFAULT_FROM_EMAIL instead (docs/notify.md).
_MAIL = "console" if DEBUG else "smtp"
if django.VERSION >= (6, 1):  # MAILERS replaces EMAIL_BACKEND (deprecated) from 6.1
    MAILERS = {"default": {"BACKEND": f"django.core.mail.backends.{_MAIL}.EmailBackend"}}
else:
    EMAIL_BACKEND = f"django.core.mail.backends.{_MAIL}.EmailBackend"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "gpu_monitor": {"handlers": ["console"], "level": "INFO"},
        # django-health-check logs each failing probe with a traceback; gpu_monitor's
        # own logger already says a failure once per change of state.
        "health_check": {"level": "ERROR"},
    },
}
