"""The example project with the process endpoints opened to anyone (for the browser test)."""

from example_project.settings import *  # noqa: F403

GPU_MONITOR = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
