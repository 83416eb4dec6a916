"""The JSON 404 of an unknown path lists the app's endpoints, read from its URL patterns:
the installed sub-apps' endpoints (hosts, history, ...) included."""

from __future__ import annotations

import re
from types import ModuleType

from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import include, path, re_path, resolve

from gpu_monitor import urls
from gpu_monitor.views import endpoint_paths

SAMPLE_VALUES = {"gpu": "0", "host": "node-1"}


def listed(client: Client, url: str = "/api/gpu/nope") -> list[str]:
    response = client.get(url)
    assert response.status_code == 404
    detail: str = response.json()["detail"]
    found = re.fullmatch(r"Not found\. Endpoints: (.*) \(<gpu>: an index or a UUID\)\.", detail)
    assert found, detail
    return found.group(1).split(", ")


def test_sub_app_endpoints_are_listed(fake_nvml: ModuleType, client: Client) -> None:
    endpoints = listed(client)

    assert endpoints[:3] == ["devices", "devices/<gpu>", "devices/<gpu>/processes"]
    for endpoint in ("history", "events", "hosts", "hosts/<host>", "hosts/<host>/processes"):
        assert endpoint in endpoints


def test_every_listed_endpoint_exists(fake_nvml: ModuleType, client: Client) -> None:
    for endpoint in listed(client):
        url = re.sub(r"<(\w+)>", lambda m: SAMPLE_VALUES.get(m.group(1), "x"), endpoint)
        assert resolve(f"/api/gpu/{url}").url_name != "not-found", endpoint


def test_every_named_endpoint_is_listed(fake_nvml: ModuleType, client: Client) -> None:
    """Each URL name of the app (but the catch-all's) is reached by a listed path."""
    reached = set()
    for endpoint in listed(client):
        url = re.sub(r"<(\w+)>", lambda m: SAMPLE_VALUES.get(m.group(1), "x"), endpoint)
        reached.add(resolve(f"/api/gpu/{url}").url_name)
    names = {p.name for p in urls.urlpatterns} - {"not-found"}

    assert names <= reached


def test_the_list_is_the_same_where_the_app_is_mounted_at_the_root(
    fake_nvml: ModuleType, client: Client
) -> None:
    under_prefix = listed(client)
    with override_settings(ROOT_URLCONF="tests.unit.urls_at_root"):
        at_root = listed(client, "/devices/0/extra")

    assert at_root == under_prefix


def page(request: object) -> HttpResponse:
    return HttpResponse()


def test_patterns_are_written_as_paths() -> None:
    patterns = [
        re_path(r"^devices/(?P<gpu>[^/]+)/processes/?$", page),
        re_path(r"^(history|events)/?$", page),
        re_path(r"^a\.b/(?P<n>(?:x|y))$", page),
        path("fleet/<str:host>/", page),
        path("usage/", include([path("", page), path("<int:day>/", page)])),
        re_path(r"^devices/(?P<gpu>[^/]+)/processes$", page),  # the same path again
        re_path(r"", page),  # the catch-all
    ]

    assert endpoint_paths(patterns) == [
        "devices/<gpu>/processes",
        "history",
        "events",
        "a.b/<n>",
        "fleet/<host>",
        "usage",
        "usage/<day>",
    ]


def test_the_view_lists_the_patterns_it_is_given() -> None:
    """urls.py hands the view its patterns (the view imports no URLconf), read at each
    request: a pattern added after ``as_view()`` is listed too."""
    from rest_framework.test import APIRequestFactory

    from gpu_monitor.views import NotFoundView

    patterns = [re_path(r"^devices/?$", page)]
    view = NotFoundView.as_view(patterns=patterns)
    patterns.append(re_path(r"^later/?$", page))

    response = view(APIRequestFactory().get("/api/gpu/nope"))

    assert response.status_code == 404
    assert response.data["detail"] == (
        "Not found. Endpoints: devices, later (<gpu>: an index or a UUID)."
    )
