"""A write with a session cookie (issue 32): a method the view does not allow is a 405
with ``Allow`` before authentication, and so before DRF's CSRF check, runs; an allowed
method is unchanged, and a misconfigured ``GPU_MONITOR`` is still a 503 first."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db
SESSION = {
    "AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
}
PATHS = (
    "/api/gpu/devices",
    "/api/gpu/devices/0",
    "/api/gpu/status",
    "/api/gpu/metrics",
    "/api/gpu/dashboard/",
    "/api/gpu/history",
    "/api/gpu/events",
    "/api/gpu/hosts",
    "/api/gpu/fleet/",
    "/api/gpu/usage/",
    "/api/gpu/usage/idle",
)


@pytest.fixture
def signed_in(fake_nvml: ModuleType) -> Client:
    user = User.objects.create_user("ada", password="pw-not-secret")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@override_settings(GPU_MONITOR=SESSION)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_write_with_a_session_cookie_is_a_405_not_a_csrf_403(
    signed_in: Client, path: str, method: str
) -> None:
    response = getattr(signed_in, method)(path, HTTP_ACCEPT="application/json")

    assert response.status_code == 405, response.content[:300]
    assert "GET" in response["Allow"]
    assert "POST" not in response["Allow"]
    assert response.json() == {"detail": f'Method "{method.upper()}" not allowed.'}


@override_settings(GPU_MONITOR=SESSION)
def test_a_405_page_renders_without_reading_the_user(signed_in: Client) -> None:
    response = signed_in.post("/api/gpu/dashboard/", HTTP_ACCEPT="text/html")

    assert response.status_code == 405
    assert response["Content-Type"].startswith("text/html")


@override_settings(GPU_MONITOR=SESSION)
@pytest.mark.parametrize("path", ["/api/gpu/devices", "/api/gpu/dashboard/", "/api/gpu/usage/"])
def test_allowed_methods_still_authenticate(fake_nvml: ModuleType, path: str) -> None:
    anonymous: Any = Client()

    assert anonymous.get(path, HTTP_ACCEPT="application/json").status_code == 403
    assert anonymous.head(path, HTTP_ACCEPT="application/json").status_code == 403


@override_settings(GPU_MONITOR=SESSION)
def test_a_signed_in_get_is_unchanged(signed_in: Client) -> None:
    assert signed_in.get("/api/gpu/devices", HTTP_ACCEPT="application/json").status_code == 200


@override_settings(GPU_MONITOR={**SESSION, "NOT_A_KEY": 1})
def test_a_misconfiguration_is_still_a_503_before_the_405(signed_in: Client) -> None:
    response = signed_in.post("/api/gpu/devices", HTTP_ACCEPT="application/json")

    assert response.status_code == 503


@override_settings(GPU_MONITOR=SESSION)
def test_other_paths_are_still_a_404(signed_in: Client) -> None:
    response = signed_in.get("/api/gpu/nothing-here", HTTP_ACCEPT="application/json")

    assert response.status_code == 404
