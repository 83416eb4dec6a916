"""The node roles' admin page: whoever may change node roles maps a node's database role
to its host there (row-level security on PostgreSQL: tests/fleet/test_node_rls_postgres.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from gpu_monitor.fleet.models import NodeRole

pytestmark = pytest.mark.django_db
PAGE = "/admin/gpu_monitor_fleet/noderole/"


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "x"))
    return client


def test_a_superuser_maps_a_role_to_its_host_and_sees_it_listed(admin_client: Client) -> None:
    added = admin_client.post(f"{PAGE}add/", {"role": "gpu_node_a", "host": "node-a"})

    assert added.status_code == 302
    assert NodeRole.objects.get().host == "node-a"
    listed = admin_client.get(PAGE)
    assert listed.status_code == 200
    assert "gpu_node_a" in listed.content.decode()


def test_one_role_is_mapped_to_one_host(admin_client: Client) -> None:
    NodeRole.objects.create(role="gpu_node_a", host="node-a")

    again = admin_client.post(f"{PAGE}add/", {"role": "gpu_node_a", "host": "node-b"})

    assert again.status_code == 200  # the form again, with its error
    assert "Node role with this Role already exists." in again.content.decode()
    assert list(NodeRole.objects.values_list("host", flat=True)) == ["node-a"]


def test_a_role_longer_than_postgresql_allows_is_refused(admin_client: Client) -> None:
    answer = admin_client.post(f"{PAGE}add/", {"role": "r" * 64, "host": "node-a"})

    assert answer.status_code == 200
    assert "at most 63 characters" in answer.content.decode()
    assert not NodeRole.objects.exists()
