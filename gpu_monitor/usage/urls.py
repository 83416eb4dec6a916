"""URLs of the usage sub-app; gpu_monitor.urls includes them when it is installed."""

from __future__ import annotations

urlpatterns: list[object] = []
