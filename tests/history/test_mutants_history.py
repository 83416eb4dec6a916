"""Tests written against the mutants of ``gpu_monitor/history/`` that survived its tests
(docs/benchmarks.md, "Mutation testing")."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client, RequestFactory

from gpu_monitor.history.admin import EventAdmin, SampleAdmin
from gpu_monitor.history.models import Event, Sample
from gpu_monitor.history.views import MAX_POINTS

pytestmark = pytest.mark.django_db
SINCE, UNTIL = "2026-11-28T00:00:00Z", "2026-11-28T01:00:00Z"


@pytest.mark.parametrize(("model", "model_admin"), [(Sample, SampleAdmin), (Event, EventAdmin)])
def test_recorded_rows_cannot_be_added_changed_or_deleted_even_by_a_superuser(
    model: type, model_admin: type
) -> None:
    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    site_admin = model_admin(model, admin.site)

    assert site_admin.has_view_permission(request) is True
    assert site_admin.has_add_permission(request) is False
    assert site_admin.has_change_permission(request) is False
    assert site_admin.has_delete_permission(request) is False


@pytest.mark.parametrize(("points", "status"), [(1, 200), (MAX_POINTS, 200), (0, 400)])
def test_points_from_1_to_max_points(client: Client, points: int, status: int) -> None:
    response = client.get(
        "/api/gpu/history", {"since": SINCE, "until": UNTIL, "points": str(points)}
    )

    assert response.status_code == status, response.content


def test_a_window_that_ends_where_it_starts_is_400(client: Client) -> None:
    response = client.get("/api/gpu/history", {"since": SINCE, "until": SINCE})

    assert response.status_code == 400
    assert "since" in response.json()["detail"]
