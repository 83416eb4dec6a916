"""A locked API (``PERMISSION_CLASSES``) locks usage too (issue 26, item 14): a client
that ``PROCESS_PERMISSION_CLASSES`` lets through, or that ``USAGE_SELF_SERVICE`` would
show their own rows, is refused ``usage``, ``usage/idle`` and the usage page when
``PERMISSION_CLASSES`` refuses it. The usage views check both: dropping the base view's
check (``super().check_permissions``) would serve usage rows to anyone."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework.permissions import BasePermission

from gpu_monitor.usage.models import Hold, Usage

pytestmark = pytest.mark.django_db
ALLOW_ANY = "rest_framework.permissions.AllowAny"


class DenyAll(BasePermission):
    """A locked API: nobody, admins included."""

    message = "The GPU API is locked."

    def has_permission(self, request: Any, view: Any) -> bool:
        return False


DENY_ALL = "tests.usage.test_usage_locked.DenyAll"
PATHS = [
    ("/api/gpu/usage", "application/json"),
    ("/api/gpu/usage/idle", "application/json"),
    ("/api/gpu/usage", "text/html"),  # the page
]


@pytest.fixture(autouse=True)
def alice() -> None:
    """Alice's usage and a GPU she holds idle: a response that leaks shows her name."""
    now = int(time.time())
    period = (now - 3600) // 300 * 300
    Usage.objects.create(
        host="node-1", gpu_uuid="GPU-0", gpu_index=0, user="alice", period=period,
        seconds_held=300, first_epoch=period + 10, last_epoch=period + 300,
    )  # fmt: skip
    Hold.objects.create(
        host="node-1", gpu_uuid="GPU-0", gpu_index=0, user="alice", held_since=now - 7200,
        idle_since=now - 7200, last_epoch=now, interval_seconds=10,
    )  # fmt: skip


def refused(client: Client, path: str, accept: str) -> None:
    response = client.get(path, HTTP_ACCEPT=accept)
    assert response.status_code in (401, 403), (path, accept, response.status_code)
    assert "alice" not in response.content.decode()


def test_the_fixture_is_served_when_nothing_is_locked(client: Client) -> None:
    # The other tests' control: with PERMISSION_CLASSES open, the same clients see alice.
    with override_settings(
        GPU_MONITOR={"PERMISSION_CLASSES": [ALLOW_ANY], "PROCESS_PERMISSION_CLASSES": [ALLOW_ANY]}
    ):
        for path, accept in PATHS[:2]:
            response = client.get(path, {"minutes": "60"}, HTTP_ACCEPT=accept)
            assert response.status_code == 200
            assert "alice" in response.content.decode()
        assert client.get("/api/gpu/usage", HTTP_ACCEPT="text/html").status_code == 200


@override_settings(
    GPU_MONITOR={"PERMISSION_CLASSES": [DENY_ALL], "PROCESS_PERMISSION_CLASSES": [ALLOW_ANY]}
)
@pytest.mark.parametrize(("path", "accept"), PATHS)
def test_a_locked_api_refuses_usage_to_a_client_the_process_classes_let_through(
    admin_client: Client, client: Client, path: str, accept: str
) -> None:
    refused(client, path, accept)
    refused(admin_client, path, accept)


@override_settings(
    GPU_MONITOR={
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "PROCESS_PERMISSION_CLASSES": [ALLOW_ANY],
    }
)
@pytest.mark.parametrize(("path", "accept"), PATHS)
def test_an_api_for_signed_in_users_refuses_usage_to_anonymous_clients(
    client: Client, path: str, accept: str
) -> None:
    refused(client, path, accept)


@override_settings(GPU_MONITOR={"PERMISSION_CLASSES": [DENY_ALL], "USAGE_SELF_SERVICE": True})
@pytest.mark.parametrize(("path", "accept"), PATHS)
def test_self_service_does_not_open_a_locked_api(client: Client, path: str, accept: str) -> None:
    User.objects.create_user("alice", password="pw")
    client.login(username="alice", password="pw")

    refused(client, path, accept)
