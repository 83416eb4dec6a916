"""History tests run on SQLite in the main suite and again on a real PostgreSQL
(``--ds tests.settings_postgres``, as scripts/test does). Tests marked ``postgres``
need PostgreSQL (they stop and start its server): deselected on SQLite, not skipped."""

from __future__ import annotations

import pytest
from django.conf import settings


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if on_postgres():
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("postgres") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
