"""Benchmark settings: the example project with DEBUG off, quiet logs and a bare view."""

from example_project.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
# The process endpoints are admins-only by default; the benchmark reads them anonymously.
GPU_MONITOR = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
