"""Benchmark settings: the example project with DEBUG off, quiet logs and a bare view."""

from example_project.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
