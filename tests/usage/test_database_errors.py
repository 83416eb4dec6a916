"""The usage endpoints' 503 for a database error names the usage, says what happened
(tables missing: migrate; otherwise the database did not answer) and is logged by the
usage's own logger."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError, ProgrammingError
from django.test import Client

from gpu_monitor.usage import views

pytestmark = pytest.mark.django_db


def failing(exc: Exception) -> object:
    def report(*args: object, **kwargs: object) -> None:
        raise exc

    return report


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (
            OperationalError("no such table: gpu_monitor_usage_usage"),
            "The GPU usage tables are missing or out of date (OperationalError): "
            "run manage.py migrate.",
        ),
        (
            OperationalError("server closed the connection unexpectedly"),
            "The GPU usage database did not answer (OperationalError); see the server log.",
        ),
        (
            ProgrammingError("permission denied for table gpu_monitor_usage_usage"),
            "The GPU usage database refused the query (ProgrammingError); see the server log.",
        ),
    ],
)
@pytest.mark.parametrize(
    ("path", "function"), [("usage", "usage_report"), ("usage/idle", "idle_now")]
)
def test_the_503_names_the_usage_and_what_happened(
    admin_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    exc: Exception,
    detail: str,
    path: str,
    function: str,
) -> None:
    monkeypatch.setattr(views, function, failing(exc))
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        response = admin_client.get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")

    assert response.status_code == 503
    assert response.json() == {"detail": detail}
    logged = [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("gpu_monitor")]
    assert logged == [("gpu_monitor.usage.views", f"GPU usage query failed: {exc}")]
