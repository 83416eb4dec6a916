"""Test settings whose project routes the history models to a second database, as a
project that keeps its GPU history apart does (tests/history/test_history_router.py)."""

from typing import Any

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "history": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}
DATABASE_ROUTERS = ["tests.history.settings_api_router.HistoryRouter"]


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
