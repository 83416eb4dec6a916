"""GET hosts' ``?sort=`` (problems first, by last seen, by name) over every page, the
fleet page's order (problems first by default) and its sort control."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from gpu_monitor.fleet import pages
from gpu_monitor.fleet.limits import SORTS
from tests.fleet.conftest import NOW, Clock, seed_host_states

pytestmark = pytest.mark.django_db


FLEET = {
    "a-up": (0, False),
    "b-down": (1000, False),
    "c-problem": (0, True),
    "d-stale": (100, False),
    "e-up": (5, False),
    "f-down-problem": (2000, True),
    "g-stale-problem": (50, True),
}


def names(path: str) -> list[str]:
    response = APIClient().get(f"/api/gpu/{path}")
    assert response.status_code == 200, response.json()
    return [h["host"] for h in response.json()["results"]]


def test_the_default_order_stays_by_host(clock: Clock) -> None:
    seed_host_states(FLEET)

    assert names("hosts") == sorted(FLEET)
    assert names("hosts?sort=host") == names("hosts?sort=") == sorted(FLEET)


def test_problems_first_puts_down_then_problem_then_stale_hosts_first(clock: Clock) -> None:
    seed_host_states(FLEET)

    assert names("hosts?sort=problems") == [
        "b-down",
        "f-down-problem",
        "c-problem",
        "g-stale-problem",
        "d-stale",
        "a-up",
        "e-up",
    ]


def test_last_seen_puts_the_longest_silent_first(clock: Clock) -> None:
    seed_host_states({**FLEET, "h-up": (5, False)})

    assert names("hosts?sort=last_seen") == [
        "f-down-problem",
        "b-down",
        "d-stale",
        "g-stale-problem",
        "e-up",
        "h-up",
        "a-up",
        "c-problem",
    ]


def test_the_first_page_holds_the_problem_hosts_of_the_whole_fleet(clock: Clock) -> None:
    fleet = {f"node-{n:04}": (0, False) for n in range(1000)}
    fleet["node-0999"] = (0, True)  # the last by name
    fleet["node-0998"] = (5000, False)
    seed_host_states(fleet)

    first = names("hosts?sort=problems&page_size=10")

    assert first[:2] == ["node-0998", "node-0999"]
    assert first[2:] == [f"node-{n:04}" for n in range(8)]
    assert names("hosts?sort=problems&state=up&problem=1") == ["node-0999"]


def test_the_state_rule_of_the_order_is_the_states(clock: Clock) -> None:
    seed_host_states(FLEET)
    clock.now = NOW + 40  # every age 40 s more: a-up, c-problem and e-up are stale now

    hosts = APIClient().get("/api/gpu/hosts?sort=problems").json()["results"]
    ranks = [
        0 if h["state"] == "down" else 1 if h["problems"] else 2 if h["state"] == "stale" else 3
        for h in hosts
    ]

    assert ranks == sorted(ranks)
    assert [h["host"] for h in hosts][-3:] == ["a-up", "d-stale", "e-up"]


@pytest.mark.parametrize("sort", ["name", "PROBLEMS", "-host", "last seen"])
def test_a_bad_sort_is_400_naming_it_and_the_choices(clock: Clock, sort: str) -> None:
    seed_host_states(FLEET)

    response = APIClient().get("/api/gpu/hosts", {"sort": sort})

    assert response.status_code == 400
    assert response.json()["detail"] == f"sort: one of host, problems, last_seen, not {sort!r}"


def test_the_schema_lists_the_sorts() -> None:
    pytest.importorskip("drf_spectacular")
    from drf_spectacular.generators import SchemaGenerator

    schema: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/gpu/hosts/"]["get"]
    (sort,) = [p for p in operation["parameters"] if p["name"] == "sort"]

    assert sort["schema"]["enum"] == [*SORTS, ""]
    assert all(name in sort["description"] for name in SORTS)


def test_the_page_sorts_problems_first_by_default(clock: Clock) -> None:
    seed_host_states(FLEET)

    default = APIClient().get("/api/gpu/fleet/", HTTP_ACCEPT="application/json").json()
    by_name = APIClient().get("/api/gpu/fleet/?sort=host", HTTP_ACCEPT="application/json").json()

    assert [h["host"] for h in default["hosts"]] == names("hosts?sort=problems")
    assert [h["host"] for h in by_name["hosts"]] == sorted(FLEET)


def test_the_page_offers_each_sort_and_keeps_the_chosen_one(clock: Clock) -> None:
    seed_host_states(FLEET)

    html = (
        APIClient().get("/api/gpu/fleet/?sort=last_seen", HTTP_ACCEPT="text/html").content.decode()
    )

    assert list(pages.SORT_LABELS) == ["problems", "host", "last_seen"]
    assert set(pages.SORT_LABELS) == set(SORTS)
    assert '<option value="last_seen" selected>Last seen</option>' in html
    assert '<option value="problems">Problems first</option>' in html
    assert html.index('"f-down-problem"') < html.index('"a-up"')


def test_a_bad_sort_on_the_page_is_400(clock: Clock) -> None:
    response = APIClient().get("/api/gpu/fleet/?sort=x", HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("sort: one of host, problems, last_seen")
