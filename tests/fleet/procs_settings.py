"""Settings of a ``gpu_record`` process started by test_fleet_processes_postgres.py: a
fleet node writing to the test run's PostgreSQL under a role of its own (so that the test
can cut that one node's connections). The environment gives the database
(``PROCS_DB``: <socket dir>:<port>:<database>:<role>) and, optionally, the buffer
(``PROCS_BUFFER_TICKS``)."""

import os

from tests.settings import *  # noqa: F403

_host, _port, _name, _user = os.environ["PROCS_DB"].split(":")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _name,
        "USER": _user,
        "HOST": _host,
        "PORT": _port,
        "OPTIONS": {"connect_timeout": 2},
    }
}
GPU_MONITOR = {"HISTORY_BUFFER_TICKS": int(os.environ.get("PROCS_BUFFER_TICKS", "360"))}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"gpu_monitor": {"handlers": ["stderr"], "level": "INFO"}},
}
