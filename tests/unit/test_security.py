"""Permissions, authentication, throttling and error bodies, via GPU_MONITOR."""

from __future__ import annotations

from types import ModuleType

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client, override_settings

ENDPOINTS = ["/api/gpu/devices", "/api/gpu/devices/0", "/api/gpu/driver", "/api/gpu/status"]
AUTHENTICATED = {
    "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.BasicAuthentication",  # first: its challenge gives 401
        "rest_framework.authentication.SessionAuthentication",
    ],
}


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user("alice", password="s3cret-pass")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_is_authenticated_rejects_anonymous(
    fake_nvml: ModuleType, client: Client, path: str
) -> None:
    with override_settings(GPU_MONITOR=AUTHENTICATED):
        response = client.get(path)

    assert response.status_code == 401  # BasicAuthentication offers a challenge
    assert response["WWW-Authenticate"].startswith("Basic")
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_is_authenticated_without_challenge_is_403(
    fake_nvml: ModuleType, client: Client, path: str
) -> None:
    settings = {
        **AUTHENTICATED,
        "AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    }
    with override_settings(GPU_MONITOR=settings):
        assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ENDPOINTS)
def test_is_authenticated_lets_users_in(
    fake_nvml: ModuleType, client: Client, user: User, path: str
) -> None:
    client.force_login(user)
    with override_settings(GPU_MONITOR=AUTHENTICATED):
        assert client.get(path).status_code == 200


def test_basic_auth_works(fake_nvml: ModuleType, client: Client, user: User) -> None:
    with override_settings(GPU_MONITOR=AUTHENTICATED):
        response = client.get(
            "/api/gpu/devices", HTTP_AUTHORIZATION="Basic YWxpY2U6czNjcmV0LXBhc3M="
        )

    assert response.status_code == 200


@pytest.mark.parametrize("path", ENDPOINTS)
def test_is_admin_user_rejects_normal_user(
    fake_nvml: ModuleType, client: Client, user: User, path: str
) -> None:
    client.force_login(user)
    with override_settings(
        GPU_MONITOR={"PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"]}
    ):
        response = client.get(path)

    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to perform this action."}


def test_is_admin_user_lets_staff_in(fake_nvml: ModuleType, client: Client, user: User) -> None:
    user.is_staff = True
    user.save()
    client.force_login(user)
    with override_settings(
        GPU_MONITOR={"PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"]}
    ):
        assert client.get("/api/gpu/devices").status_code == 200


def test_override_takes_effect_on_next_request(fake_nvml: ModuleType, client: Client) -> None:
    assert client.get("/api/gpu/status").status_code == 200
    with override_settings(GPU_MONITOR=AUTHENTICATED):
        assert client.get("/api/gpu/status").status_code == 401
    assert client.get("/api/gpu/status").status_code == 200


def test_project_defaults_apply_when_unset(fake_nvml: ModuleType, client: Client) -> None:
    rest_framework = {
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    }
    with override_settings(REST_FRAMEWORK=rest_framework):
        assert client.get("/api/gpu/devices").status_code == 403


def test_throttle_gives_429_with_retry_after(fake_nvml: ModuleType, client: Client) -> None:
    cache.clear()
    with override_settings(GPU_MONITOR={"THROTTLE_CLASSES": ["tests.throttles.ThreePerMinute"]}):
        statuses = [client.get("/api/gpu/devices").status_code for _ in range(4)]
        response = client.get("/api/gpu/driver")

    assert statuses == [200, 200, 200, 429]
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["detail"].startswith("Request was throttled.")
    cache.clear()


@pytest.mark.parametrize("value", [["no.such.Permission"], [42], "rest_framework"])
def test_misconfigured_classes_are_json_503_not_500(
    fake_nvml: ModuleType, client: Client, value: object
) -> None:
    with override_settings(GPU_MONITOR={"PERMISSION_CLASSES": value}):
        response = client.get("/api/gpu/devices")

    assert response.status_code == 503
    assert response.json()["detail"].startswith(
        "GPU_MONITOR is misconfigured: GPU_MONITOR['PERMISSION_CLASSES'] "
    )


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/gpu/devices/99", 404),
        ("get", "/api/gpu/devices/-1", 404),
        ("get", "/api/gpu/devices/%25%00%ff", 404),
        ("get", "/api/gpu/devices/" + "9" * 40, 404),
        ("get", "/api/gpu/whatever/else", 404),
        ("post", "/api/gpu/devices", 405),
        ("delete", "/api/gpu/devices/0", 405),
        ("get", "/api/gpu/driver", 503),
    ],
)
def test_error_bodies_are_json_with_debug_on_or_off(
    fake_nvml: ModuleType, client: Client, debug: bool, method: str, path: str, status: int
) -> None:
    if status == 503:
        fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND
    with override_settings(DEBUG=debug):
        response = getattr(client, method)(path, HTTP_ACCEPT="application/json")

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert list(response.json()) == ["detail"]
    assert b"Traceback" not in response.content
