"""One rule of content negotiation for the URLs that serve a page and JSON (issue 32):
the client's q-values decide, ties and ``*/*`` go to the URL's first renderer
(``dashboard/`` and ``fleet/``: the page; ``usage/``: JSON)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from django.test import Client, override_settings
from rest_framework.exceptions import NotAcceptable
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer

from gpu_monitor.negotiation import MediaRange, choose

pytestmark = pytest.mark.django_db
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
# What Chromium sends when it opens a page.
BROWSER = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
PAGES = ("/api/gpu/dashboard/", "/api/gpu/fleet/", "/api/gpu/usage/")
# Accept -> what every URL answers, whichever renderer it lists first.
SAME_EVERYWHERE = {
    "text/html;q=0.9,application/json;q=1": "json",
    "application/json;q=1,text/html;q=0.9": "json",
    "application/json": "json",
    "application/json, text/plain, */*": "json",  # axios: the specific range wins
    "text/html": "page",
    BROWSER: "page",
    "application/json;q=0.5,text/html": "page",
    "text/html;q=0.1,*/*;q=0.05,application/json;q=0.2": "json",
}
# Ties, */* and no Accept: the URL's first renderer.
FIRST_RENDERER = {
    "/api/gpu/dashboard/": "page",
    "/api/gpu/fleet/": "page",
    "/api/gpu/usage/": "json",
}


def kind(response: Any) -> str:
    content_type = response["Content-Type"]
    if content_type.startswith("application/json"):
        return "json"
    assert content_type.startswith("text/html"), content_type
    return "page"


@pytest.fixture
def get(fake_nvml: ModuleType) -> Any:
    def get(path: str, accept: str | None) -> Any:
        headers = {} if accept is None else {"HTTP_ACCEPT": accept}
        with override_settings(GPU_MONITOR=OPEN):
            return Client().get(path, **headers)

    return get


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("accept", list(SAME_EVERYWHERE))
def test_q_values_decide_the_same_way_on_every_page_url(get: Any, path: str, accept: str) -> None:
    response = get(path, accept)

    assert response.status_code == 200, response.content[:300]
    assert kind(response) == SAME_EVERYWHERE[accept]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("accept", [None, "*/*", "text/html, application/json"])
def test_ties_and_any_type_go_to_the_urls_first_renderer(
    get: Any, path: str, accept: str | None
) -> None:
    response = get(path, accept)

    assert kind(response) == FIRST_RENDERER[path]


@pytest.mark.parametrize("path", PAGES)
def test_a_type_refused_with_q_0_is_not_chosen(get: Any, path: str) -> None:
    response = get(path, "text/html;q=0, application/json;q=0.1")

    assert kind(response) == "json"


def test_the_json_api_takes_json_over_a_preferred_html_it_does_not_serve(get: Any) -> None:
    # The browsable API is text/html too: a client that prefers JSON gets JSON.
    response = get("/api/gpu/devices/", "text/html;q=0.9,application/json;q=1")

    assert kind(response) == "json"


def test_a_browser_still_gets_the_browsable_api(get: Any) -> None:
    response = get("/api/gpu/devices/", BROWSER)

    assert kind(response) == "page"
    assert b"Django REST framework" in response.content or b"<html" in response.content


class Html(TemplateHTMLRenderer):
    pass


def test_choose_keeps_drfs_accepted_media_type() -> None:
    json_renderer, html = JSONRenderer(), Html()

    assert choose([html, json_renderer], ["application/json; indent=4"]) == (
        json_renderer,
        "application/json; indent=4",
    )
    assert choose([json_renderer, html], ["*/*;q=0.5"]) == (json_renderer, "application/json;q=0.5")


def test_choose_refuses_what_no_renderer_serves() -> None:
    with pytest.raises(NotAcceptable):
        choose([JSONRenderer()], ["image/png", "application/json;q=0"])


@pytest.mark.parametrize(
    ("text", "quality"), [("a/b;q=0.3", 0.3), ("a/b;q=x", 1.0), ("a/b;q=7", 1.0), ("a/b;q=-1", 0.0)]
)
def test_quality_is_read_leniently(text: str, quality: float) -> None:
    assert MediaRange.parse(text).quality == quality


@pytest.mark.parametrize("path", [*PAGES, "/api/gpu/devices/"])
def test_a_format_of_no_renderer_is_a_404_naming_it_in_the_accepted_format(
    get: Any, path: str
) -> None:
    response = get(f"{path}?format=xml", "application/json")

    assert (response.status_code, kind(response)) == (404, "json")
    assert response.json()["detail"].startswith("format: one of ")
    assert response.json()["detail"].endswith(", not 'xml'")


def test_a_browser_s_bad_format_on_a_page_is_the_page_s_404(get: Any) -> None:
    response = get("/api/gpu/dashboard/?format=xml", BROWSER)

    assert (response.status_code, kind(response)) == (404, "page")
