"""Settings of a gpu_record process whose project routes the history models to a second
database (HISTORY_TEST_DB: the default SQLite file; the history one is beside it)."""

import os
from typing import Any

from tests.history.settings_process import *  # noqa: F403

_default = os.environ["HISTORY_TEST_DB"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _default},
    "history": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{_default}.history"},
}
DATABASE_ROUTERS = ["tests.history.settings_router.HistoryRouter"]


class HistoryRouter:
    """gpu_monitor.history's tables live in ``history``, everything else in ``default``."""

    # One tick writes the first three; notify reads usage beside its own table.
    app_labels = (
        "gpu_monitor_history",
        "gpu_monitor_fleet",
        "gpu_monitor_usage",
        "gpu_monitor_notify",
    )

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "history" if model._meta.app_label in self.app_labels else None

    db_for_write = db_for_read

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return (db == "history") == (app_label in self.app_labels)
