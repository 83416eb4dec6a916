"""``?host=`` of a host that never recorded (issue 32): a JSON 404 naming it on
``history`` and ``events``, the shape of ``hosts/<host>``'s; a host that recorded but has
nothing in the window is still a 200 with nothing."""

from __future__ import annotations

import socket

import pytest
from django.test import Client

from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.params import moment

pytestmark = pytest.mark.django_db
T0 = 1_795_824_000  # 2026-11-28T00:00:00Z
UUID = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"
ENDPOINTS = ("/api/gpu/history", "/api/gpu/events")


def sample(host: str) -> None:
    Sample.objects.create(
        host=host, gpu_uuid=UUID, gpu_index=0, name="NVIDIA H100", epoch=T0, timestamp=moment(T0)
    )


def event(host: str) -> None:
    Event.objects.create(host=host, epoch=T0, timestamp=moment(T0), kind="nvml_available")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_host_never_recorded_is_a_404_naming_it(client: Client, path: str) -> None:
    sample("node-1")

    response = client.get(path, {"host": "nodd-1"})

    assert response.status_code == 404
    assert response.json() == {
        "detail": "No host 'nodd-1' has recorded GPU history (gpu_record --host)."
    }


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("recorded", [sample, event])
def test_a_known_host_with_nothing_in_the_window_is_a_200(
    client: Client, path: str, recorded: object
) -> None:
    recorded("node-1")  # type: ignore[operator]
    window = {"since": "2026-11-29T00:00:00Z", "until": "2026-11-29T01:00:00Z"}

    response = client.get(path, {"host": "node-1", **window})

    assert response.status_code == 200
    body = response.json()
    assert body.get("series", body.get("results")) == []


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_host_known_by_its_rollups_only_is_known(client: Client, path: str) -> None:
    Rollup.objects.create(host="node-1", gpu_uuid=UUID, gpu_index=0, epoch=T0)

    assert client.get(path, {"host": "node-1"}).status_code == 200


def test_without_host_the_server_s_own_history_is_a_200_even_if_empty(client: Client) -> None:
    assert client.get("/api/gpu/history").status_code == 200
    assert client.get("/api/gpu/events").status_code == 200


@pytest.mark.parametrize("path", ENDPOINTS)
def test_this_server_s_own_host_is_known_before_its_first_tick(client: Client, path: str) -> None:
    """The dashboard asks for ?host=<this server> before the recorder beside it wrote."""
    assert client.get(path, {"host": socket.gethostname()}).status_code == 200


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_host_too_long_is_still_a_400(client: Client, path: str) -> None:
    response = client.get(path, {"host": "x" * 256})

    assert response.status_code == 400
