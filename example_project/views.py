"""Views of the example project."""

from drf_spectacular.views import SpectacularRedocView


class OfflineRedocView(SpectacularRedocView):
    """ReDoc with every asset served locally (no web fonts from a CDN)."""

    template_name = "example_project/redoc.html"
