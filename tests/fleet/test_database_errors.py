"""The fleet API's 503 for a database error names the fleet (not the history whose base
view it used to share), says what happened, and is logged by the fleet's own logger."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError
from django.db.models import QuerySet
from django.test import Client

from gpu_monitor.fleet.models import HostState

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["hosts", "hosts/node-1", "hosts/node-1/processes"])
def test_the_fleet_apis_503_names_the_fleet(
    admin_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    exc = OperationalError("server closed the connection unexpectedly")

    def failing(*args: object, **kwargs: object) -> QuerySet[HostState]:
        raise exc

    monkeypatch.setattr(HostState.objects, "get_queryset", failing)  # the fleet's table only
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        response = admin_client.get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")

    assert response.status_code == 503
    assert response.json() == {
        "detail": "The GPU fleet database did not answer (OperationalError); see the server log."
    }
    logged = [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("gpu_monitor")]
    assert logged == [("gpu_monitor.fleet.views", f"GPU fleet query failed: {exc}")]
