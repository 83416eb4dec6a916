"""``usage`` and ``usage/idle`` at their edges (issue 32): ``?host=`` of a host that never
recorded usage is a JSON 404 naming it (a known host with nothing in the window is a 200
with nothing), and ``usage`` echoes the window it counted: whole five-minute periods."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from gpu_monitor.params import iso
from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.report import period_window, usage_report
from tests.usage.conftest import NOW

pytestmark = pytest.mark.django_db
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
ENDPOINTS = ("/api/gpu/usage", "/api/gpu/usage/idle")


def usage(host: str = "node-1", period: int = NOW) -> None:
    Usage.objects.create(
        host=host, gpu_uuid="GPU-0", gpu_index=0, user="alice", period=period,
        seconds_held=300, first_epoch=period + 10, last_epoch=period + 300,
    )  # fmt: skip


def hold(host: str = "node-1") -> None:
    Hold.objects.create(
        host=host, gpu_uuid="GPU-0", gpu_index=0, user="alice", held_since=NOW - 600,
        idle_since=None, last_epoch=NOW - 300, interval_seconds=10, ended_epoch=NOW,
    )  # fmt: skip


@override_settings(GPU_MONITOR=OPEN)
@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_host_never_recorded_is_a_404_naming_it(path: str) -> None:
    usage("node-1")

    response = Client().get(path, {"host": "nodd-1"})

    assert response.status_code == 404
    assert response.json() == {
        "detail": "No host 'nodd-1' has recorded GPU usage (gpu_record --host)."
    }


@override_settings(GPU_MONITOR=OPEN)
@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("recorded", [usage, hold])
def test_a_known_host_with_nothing_now_is_a_200_with_nothing(path: str, recorded: object) -> None:
    recorded()  # type: ignore[operator]
    window = {"since": iso(NOW - 86400 * 30), "until": iso(NOW - 86400 * 29)}

    response = Client().get(path, {"host": "node-1", **(window if path.endswith("usage") else {})})

    assert response.status_code == 200
    body = response.json()
    assert body.get("rows", body.get("gpus")) == []


@override_settings(GPU_MONITOR=OPEN)
def test_the_page_url_answers_json_404_to_a_program_too() -> None:
    response = Client().get("/api/gpu/usage/", {"host": "nodd-1"}, HTTP_ACCEPT="application/json")

    assert response.status_code == 404


@override_settings(GPU_MONITOR=OPEN)
@pytest.mark.parametrize(
    ("since", "until", "counted"),
    [
        # Inside periods: from the start of since's period to the end of until's.
        (NOW + 299, NOW + 601, (NOW, NOW + 900)),
        # On period bounds: as given (until's period starts at until: not counted).
        (NOW, NOW + 600, (NOW, NOW + 600)),
        (NOW + 1, NOW + 2, (NOW, NOW + 300)),
    ],
)
def test_usage_echoes_the_window_it_counted(
    since: int, until: int, counted: tuple[int, int]
) -> None:
    usage(period=NOW + 600)  # counted only where the window reaches into its period

    body = Client().get("/api/gpu/usage", {"since": iso(since), "until": iso(until)}).json()

    assert (body["since"], body["until"]) == (iso(counted[0]), iso(counted[1]))
    inside = counted[0] <= NOW + 600 < counted[1]
    assert [row["user"] for row in body["rows"]] == (["alice"] if inside else [])


def test_the_window_and_the_rows_agree_for_the_command_too() -> None:
    usage(period=NOW)

    body = usage_report(since=NOW + 120, until=NOW + 180, by="user")

    assert (body["since"], body["until"]) == (iso(NOW), iso(NOW + 300))
    assert body["total"]["gpu_hours"] == round(300 / 3600, 3)
    assert period_window(NOW - 1, NOW) == (NOW - 300, NOW)
