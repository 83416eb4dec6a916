"""The test settings with DRF's token authentication installed, as docs/settings.md
recommends for a Prometheus server (``tests/unit/test_api_edges_token.py`` runs a child
process on it: ``rest_framework.authtoken`` has a model, so it must be installed)."""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]  # noqa: F405
GPU_MONITOR = {
    "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
}
