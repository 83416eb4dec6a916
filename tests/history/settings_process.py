"""Settings of a gpu_record process started by a test: its database comes from the
environment (HISTORY_TEST_DB: a SQLite file path, or postgres:<socket dir>:<port>:<name>)."""

import os

from tests.settings import *  # noqa: F403

_db = os.environ["HISTORY_TEST_DB"]
if _db.startswith("postgres:"):
    _, _host, _port, _name = _db.split(":")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _name,
            "USER": "postgres",
            "HOST": _host,
            "PORT": _port,
            "OPTIONS": {"connect_timeout": 2},
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db}}
GPU_MONITOR = {"HISTORY_BUFFER_TICKS": int(os.environ.get("HISTORY_TEST_BUFFER", "360"))}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    # DEBUG: a test watches the recorder's every failed write and dropped tick.
    "loggers": {
        "gpu_monitor": {
            "handlers": ["stderr"],
            "level": os.environ.get("HISTORY_TEST_LOG_LEVEL", "INFO"),
        }
    },
}
