"""The history's panel of the dashboard (and of a fleet host's page): each card's
charts and events over a chosen window, drawn by ``charts.js`` from ``GET history`` and
``GET events``. Declared in ``HistoryConfig`` as ``plugins.Panel``; the core renders
``_panel.html`` with what ``context`` answers as ``panel``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from gpu_monitor.dashboard import url_prefix

# (the chart's name in charts.js, its caption)
CHARTS = (("utilization", "Utilisation %"), ("memory", "Memory %"), ("temperature", "°C"))
# (``since`` as GET history takes it, the button's label); the first is shown first
WINDOWS = (("-1h", "1 h"), ("-6h", "6 h"), ("-24h", "24 h"), ("-7d", "7 d"))


def context(request: HttpRequest) -> dict[str, Any]:
    """The panel's charts and windows, and the URLs charts.js reads (``urls``: in the
    namespace the page was reached by)."""
    prefix = url_prefix(request)
    return {
        "charts": CHARTS,
        "windows": WINDOWS,
        "urls": {"history": reverse(f"{prefix}history"), "events": reverse(f"{prefix}events")},
    }
