"""Settings of a ``gpu_fleet`` process started by test_gpu_fleet_pipe.py: the test
suite's, on an SQLite file the environment names (``PIPE_DB``)."""

import os

from tests.settings import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["PIPE_DB"]}}
