"""The test settings on a real PostgreSQL: a throwaway cluster started for this run
(``tests/pgcluster.py``). ``scripts/test`` runs the history tests with these once."""

from tests import pgcluster
from tests.settings import *  # noqa: F403

CLUSTER = pgcluster.start()
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "HOST": CLUSTER.directory,
        "PORT": str(CLUSTER.port),
    }
}
