"""Benchmark settings: the example project with DEBUG off, quiet logs and a bare view."""

import os

from example_project.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
# The process endpoints are admins-only by default; the benchmark reads them anonymously.
GPU_MONITOR = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
if os.environ.get("BENCH_DB"):  # bench/bypass.py's history: a SQLite file of its own
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BENCH_DB"]}
    }
