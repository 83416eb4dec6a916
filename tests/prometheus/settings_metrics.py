"""The example project with per-user GPU memory in its metrics (for the Prometheus test)."""

from example_project.settings import *  # noqa: F403

GPU_MONITOR = {"METRICS_USER_MEMORY": True}
