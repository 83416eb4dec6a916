"""Settings of a node that pushes (``gpu_record --push``): the test suite's apps and no
DATABASES at all, as a node that holds no database credentials has."""

from tests.settings import *  # noqa: F403

del DATABASES  # noqa: F821 (the suite's, from the line above)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"gpu_monitor": {"handlers": ["stderr"], "level": "INFO"}},
}
