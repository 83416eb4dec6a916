"""The browser test's example server (process permissions opened) without
gpu_monitor.notify: ``GET usage/idle``'s ``notified`` is null, and the usage page says
nothing of notices (tests/e2e/test_usage_page_browser.py)."""

from tests.e2e.settings_open_processes import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "gpu_monitor.notify"]  # noqa: F405
