"""USAGE_SELF_SERVICE never matches a signed-in user to the names the usage writer
records for processes whose owner it could not name (``unknown``, a bare uid): such a
user is refused (403), never shown everyone's unattributed usage."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from gpu_monitor.types import GPUProcess
from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.types import UNKNOWN_USER
from gpu_monitor.usage.writer import user_of

pytestmark = pytest.mark.django_db
UUID = "GPU-3a34af56-e2e8-164a-8e46-000000000000"


def held_an_hour(user: str) -> None:
    """An hour on GPU 0 an hour ago, and a hold of GPU 0 now."""
    now = int(time.time())
    period = (now - 3600) // 300 * 300
    Usage.objects.create(
        host="node-1", gpu_uuid=UUID, gpu_index=0, user=user, period=period,
        seconds_held=3600, first_epoch=period + 10, last_epoch=period + 300,
    )  # fmt: skip
    Hold.objects.create(
        host="node-1", gpu_uuid=UUID, gpu_index=0, user=user, held_since=now - 4200,
        idle_since=now - 4200, last_epoch=now - 5, interval_seconds=10,
    )  # fmt: skip


def test_the_writer_records_these_names_for_an_owner_it_cannot_name() -> None:
    """The names refused below are the writer's: ``unknown``, and a uid as digits."""

    def process(username: str | None) -> GPUProcess:
        return GPUProcess(gpu_index=0, gpu_uuid=None, pid=1, type="compute", username=username)

    assert user_of(process(None)) == UNKNOWN_USER == "unknown"
    assert user_of(process("1000")) == "1000"  # psutil: a uid without a name


@override_settings(GPU_MONITOR={"USAGE_SELF_SERVICE": True})
@pytest.mark.parametrize("name", ["unknown", "1000", "0"])
@pytest.mark.parametrize("path", ["usage", "usage/idle", "usage?by=host,user"])
def test_a_user_named_as_an_unattributed_owner_is_refused(
    client: Client, name: str, path: str
) -> None:
    held_an_hour(name)
    client.force_login(User.objects.create_user(name, password="pw-123-abc"))

    response = client.get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")

    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"user: {name!r} is a name the usage records for processes whose owner it could "
        "not name; self-service is refused to it."
    )


@override_settings(GPU_MONITOR={"USAGE_SELF_SERVICE": True})
@pytest.mark.parametrize("name", ["unknown1", "u1000", "1000a"])
def test_names_that_only_look_alike_keep_their_own_usage(client: Client, name: str) -> None:
    held_an_hour(name)
    held_an_hour("unknown")
    client.force_login(User.objects.create_user(name, password="pw-123-abc"))

    response = client.get("/api/gpu/usage", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert [(row["user"], row["gpu_hours"]) for row in response.json()["rows"]] == [(name, 1.0)]


@override_settings(GPU_MONITOR={"USAGE_SELF_SERVICE": True})
def test_the_usage_page_refuses_them_too(client: Client) -> None:
    client.force_login(User.objects.create_user("unknown", password="pw-123-abc"))

    response = client.get("/api/gpu/usage", HTTP_ACCEPT="text/html")

    assert response.status_code == 403
    assert "self-service is refused" in response.content.decode()


def test_admins_still_see_the_unattributed_rows(admin_client: Client) -> None:
    held_an_hour("unknown")

    rows = admin_client.get("/api/gpu/usage", HTTP_ACCEPT="application/json").json()["rows"]

    assert [(row["user"], row["gpu_hours"]) for row in rows] == [("unknown", 1.0)]
