"""History tests run on SQLite in the main suite and again on a real PostgreSQL
(``--ds tests.settings_postgres``, as scripts/test does). Tests marked ``postgres``
need PostgreSQL (they stop and start its server): deselected on SQLite, not skipped.
Tests marked ``routed`` run only under a settings module whose router sends the history
to a database of its own (a test of the suite runs them in a subprocess); under such a
settings module only they run."""

from __future__ import annotations

import pytest
from django.conf import settings


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def routed() -> bool:
    return "history" in settings.DATABASES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        wrong_database = item.get_closest_marker("postgres") and not on_postgres()
        wrong_router = bool(item.get_closest_marker("routed")) != routed()
        (drop if wrong_database or wrong_router else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
