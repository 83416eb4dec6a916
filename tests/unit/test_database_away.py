"""A database that does not answer while a signed-in user asks: the live GPU endpoints
need no database, so they answer (or say 503), never 500, whether the failure comes
while the session is read (authentication) or while the error page is drawn."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import ModuleType

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connection
from django.test import Client

pytestmark = pytest.mark.django_db

LIVE = ["devices", "devices/0", "status", "metrics", "dashboard/", "driver"]
STORED = ["fleet/", "usage", "history", "hosts"]


@pytest.fixture
def signed_in(client: Client) -> Client:
    """A client with the session cookie of a signed-in (non-staff) user."""
    client.force_login(User.objects.create_user("alice", password="pw-alice-123"))
    return client


@pytest.fixture
def database_away(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every statement from here on fails as a server that went away does."""

    def away(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection to server failed: Connection refused")

    monkeypatch.setattr(connection, "cursor", away)
    yield


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
@pytest.mark.parametrize("path", LIVE + STORED)
def test_a_signed_in_user_gets_an_answer_or_a_503_never_a_500(
    fake_nvml: ModuleType, signed_in: Client, database_away: None, path: str, accept: str
) -> None:
    response = signed_in.get(f"/api/gpu/{path}", HTTP_ACCEPT=accept)

    assert response.status_code == 503, response.content[:300]
    # Never another user's data: the live views say who cannot be told, the stored
    # ones never get as far as a query.
    assert "Cannot tell who is signed in" in response.content.decode()


@pytest.mark.parametrize("path", LIVE)
def test_the_503_says_the_sign_in_needs_the_database(
    fake_nvml: ModuleType,
    signed_in: Client,
    database_away: None,
    path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        response = signed_in.get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "Cannot tell who is signed in: the database did not answer "
        "(OperationalError); see the server log."
    }
    (record,) = [r for r in caplog.records if r.name.startswith("gpu_monitor")]
    assert "Connection refused" in record.getMessage()


@pytest.mark.parametrize("path", LIVE)
def test_an_anonymous_client_still_gets_the_live_gpus(
    fake_nvml: ModuleType, client: Client, database_away: None, path: str
) -> None:
    response = client.get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")

    assert response.status_code in (200, 503) and response.status_code != 500
    if path.startswith("devices"):
        assert response.status_code == 200 and b"81559" in response.content


def test_the_error_page_is_drawn_without_the_database(
    fake_nvml: ModuleType, signed_in: Client, database_away: None
) -> None:
    response = signed_in.get("/api/gpu/dashboard/", HTTP_ACCEPT="text/html")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert "Error 503: " in text and "Cannot tell who is signed in" in text
