"""``?page=`` on every paged endpoint (``PagePagination``, issue 32): 0, -1, text and a
page past the last are a 400 naming ``page``, as ``page_size`` is; page 1 of nothing is an
empty page."""

from __future__ import annotations

import pytest
from django.test import Client

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.models import Event
from gpu_monitor.params import moment

pytestmark = pytest.mark.django_db
T0 = 1_795_824_000
PAGED = ("/api/gpu/events", "/api/gpu/hosts")


@pytest.fixture(autouse=True)
def rows() -> None:
    """Three rows on each paged endpoint: one page of 100 (the hosts' 500)."""
    for n in range(3):
        Event.objects.create(
            host=f"node-{n}", epoch=T0, timestamp=moment(T0), kind="nvml_available"
        )
        HostState.objects.create(
            host=f"node-{n}", epoch=T0, timestamp=moment(T0), interval_seconds=10, devices=[]
        )


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("page", ["0", "-1", "abc", "", "last", "1.5"])
def test_a_page_that_is_not_a_whole_number_from_1_is_400_naming_page(
    admin_client: Client, path: str, page: str
) -> None:
    response = admin_client.get(path, {"page": page})

    assert response.status_code == 400
    assert response.json() == {"detail": f"page: a whole number from 1, not {page!r}"}


@pytest.mark.parametrize("path", PAGED)
def test_a_page_past_the_last_is_400_naming_page_and_the_last(
    admin_client: Client, path: str
) -> None:
    response = admin_client.get(path, {"page": "2"})

    assert response.status_code == 400
    assert response.json() == {"detail": "page: '2' is past the last page (1)"}


@pytest.mark.parametrize("path", PAGED)
def test_the_last_page_of_several_is_served(admin_client: Client, path: str) -> None:
    response = admin_client.get(path, {"page": "3", "page_size": "1"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
    assert admin_client.get(path, {"page": "4", "page_size": "1"}).json() == {
        "detail": "page: '4' is past the last page (3)"
    }


@pytest.mark.parametrize("path", PAGED)
def test_page_1_of_nothing_is_an_empty_page(admin_client: Client, path: str) -> None:
    Event.objects.all().delete()
    HostState.objects.all().delete()

    response = admin_client.get(path, {"page": "1"})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_the_schema_says_400_past_the_last_page() -> None:
    from gpu_monitor.stored import PagePagination, page_queries

    page = page_queries("rows", PagePagination)[0]

    assert page.description == "page number (default 1); 400 past the last page"
