"""The usage page: GET usage/ for a browser, the API's JSON for every other client, and the
API's permissions (PROCESS_PERMISSION_CLASSES, USAGE_SELF_SERVICE, fail-closed 503)."""

from __future__ import annotations

import io
import json
import re
import time
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings

from gpu_monitor.usage.models import Usage

pytestmark = pytest.mark.django_db
# What Chromium sends when it opens a page.
BROWSER = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
ODD = '<img src=x onerror="alert(1)">Zoë'


@pytest.fixture(autouse=True)
def rows() -> None:
    period = (int(time.time()) - 3600) // 300 * 300
    for user, held in (("alice", 3600), ("bob", 1800), (ODD, 600)):
        Usage.objects.create(
            host="node-1",
            gpu_uuid="GPU-00000000",
            gpu_index=0,
            user=user,
            period=period,
            seconds_held=held,
            first_epoch=period + 10,
            last_epoch=period + 300,
        )


def config_of(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="gpu-usage-config" type="application/json">(.*?)</script>', html)
    assert found, html[:500]
    loaded: dict[str, Any] = json.loads(found.group(1))
    return loaded


def is_page(response: Any) -> bool:
    return bool(response["Content-Type"].startswith("text/html")) and (
        b"<title>GPU usage</title>" in response.content
    )


@override_settings(GPU_MONITOR=OPEN)
@pytest.mark.parametrize("path", ["/api/gpu/usage/", "/api/gpu/usage"])
def test_a_browser_gets_the_page(client: Client, path: str) -> None:
    response = client.get(path, HTTP_ACCEPT=BROWSER)

    assert response.status_code == 200
    assert is_page(response)
    assert "Accept" in response["Vary"]
    assert config_of(response.content.decode()) == {
        "usage": "/api/gpu/usage",
        "idle": "/api/gpu/usage/idle",
        "window": "-7d",
        "idle_minutes": 60,
        "interval": 60,
    }
    html = response.content.decode()
    assert [m for m in re.findall(r'data-window="([^"]+)"', html)] == ["-7d", "-30d", "-90d"]
    assert "alice" not in html and "Zoë" not in html  # the page holds no data: it reads it


@override_settings(GPU_MONITOR=OPEN)
@pytest.mark.parametrize(
    ("accept", "query"),
    [
        ("application/json", ""),
        ("*/*", ""),  # curl
        (None, ""),  # no Accept header at all
        (BROWSER, "?format=json"),
        ("application/json, text/html;q=0.5", ""),
    ],
)
def test_every_other_client_gets_the_json_of_the_api(
    client: Client, accept: str | None, query: str
) -> None:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = client.get(f"/api/gpu/usage/{query}", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "Accept" in response["Vary"]
    body = response.json()
    assert [row["user"] for row in body["rows"]] == ["alice", "bob", ODD]
    assert body["total"]["gpu_hours"] == 1.667


@override_settings(GPU_MONITOR=OPEN)
def test_format_html_asks_for_the_page_and_usage_idle_stays_json(client: Client) -> None:
    assert is_page(client.get("/api/gpu/usage?format=html"))
    idle = client.get("/api/gpu/usage/idle", HTTP_ACCEPT=BROWSER)
    assert not is_page(idle) and idle.status_code == 200


@override_settings(GPU_MONITOR=OPEN)
def test_only_get_and_head_can_be_the_page(client: Client) -> None:
    head = client.head("/api/gpu/usage/", HTTP_ACCEPT=BROWSER)
    assert head.status_code == 200 and head["Content-Type"].startswith("text/html")
    post = client.post("/api/gpu/usage/", HTTP_ACCEPT=BROWSER)
    assert post.status_code == 405
    assert post["Allow"] == "GET, HEAD, OPTIONS"


def test_an_anonymous_browser_is_refused_as_the_api_refuses(client: Client) -> None:
    # Default PROCESS_PERMISSION_CLASSES: admins only.
    page = client.get("/api/gpu/usage/", HTTP_ACCEPT=BROWSER)
    api = client.get("/api/gpu/usage/", HTTP_ACCEPT="application/json")

    assert page.status_code == api.status_code == 403
    assert page["Content-Type"].startswith("text/html")
    assert "Error 403: " in page.content.decode()
    assert api.json()["detail"] in page.content.decode()
    assert "alice" not in page.content.decode()


def test_an_admin_gets_the_page(client: Client) -> None:
    client.force_login(User.objects.create_superuser("root", "root@example.com", "x"))

    assert is_page(client.get("/api/gpu/usage/", HTTP_ACCEPT=BROWSER))


def test_a_signed_in_user_needs_self_service(client: Client) -> None:
    client.force_login(User.objects.create_user("bob", password="x"))
    assert client.get("/api/gpu/usage/", HTTP_ACCEPT=BROWSER).status_code == 403

    with override_settings(GPU_MONITOR={"USAGE_SELF_SERVICE": True}):
        page = client.get("/api/gpu/usage/", HTTP_ACCEPT=BROWSER)
        mine = client.get("/api/gpu/usage/", HTTP_ACCEPT="application/json").json()

    assert page.status_code == 200 and is_page(page)
    assert [row["user"] for row in mine["rows"]] == ["bob"]


def test_a_misconfigured_gpu_monitor_is_a_503_page(client: Client) -> None:
    with override_settings(GPU_MONITOR=["rest_framework.permissions.IsAuthenticated"]):
        page = client.get("/api/gpu/usage/", HTTP_ACCEPT=BROWSER)
        api = client.get("/api/gpu/usage/", HTTP_ACCEPT="application/json")

    assert page.status_code == api.status_code == 503
    assert 'Error 503: <span id="error-detail">GPU_MONITOR is misconfigured: ' in (
        page.content.decode()
    )
    assert api.json()["detail"].startswith("GPU_MONITOR is misconfigured: ")


class Raises:
    """A permission class with a bug."""

    def has_permission(self, request: Any, view: Any) -> bool:
        raise AttributeError("no such thing")


def test_a_broken_permission_class_is_a_503_page(client: Client) -> None:
    broken = {"PROCESS_PERMISSION_CLASSES": ["tests.usage.test_page.Raises"]}
    with override_settings(GPU_MONITOR=broken):
        page = client.get("/api/gpu/usage/", HTTP_ACCEPT=BROWSER)

    assert page.status_code == 503
    assert "A permission class failed" in page.content.decode()


@pytest.mark.skipif(not settings.OPENAPI, reason="drf-spectacular is not installed")
def test_the_schema_still_has_the_usage_operation_and_not_the_page() -> None:
    out = io.StringIO()
    call_command("spectacular", stdout=out)
    schema = out.getvalue()

    assert "\n  /api/gpu/usage/:\n    get:\n      operationId: gpu_usage\n" in schema
    assert "text/html" not in schema


@override_settings(LOGIN_URL="admin:login")
def test_an_anonymous_browser_gets_a_sign_in_link_back_to_the_page(client: Client) -> None:
    text = client.get("/api/gpu/usage/?x=1", HTTP_ACCEPT=BROWSER).content.decode()

    assert "Error 403: " in text
    assert '<a id="sign-in" href="/admin/login/?next=/api/gpu/usage/%3Fx%3D1">Sign in</a>' in text


@override_settings(LOGIN_URL="/admin/login/")
def test_a_signed_in_user_refused_gets_no_sign_in_link(client: Client) -> None:
    client.force_login(User.objects.create_user("bob", password="x"))

    response = client.get("/api/gpu/usage/", HTTP_ACCEPT=BROWSER)

    assert response.status_code == 403
    assert 'id="sign-in"' not in response.content.decode()


@override_settings(GPU_MONITOR=OPEN)
def test_the_nav_marks_the_usage_page(fake_nvml: ModuleType, client: Client) -> None:
    text = client.get("/api/gpu/usage/", HTTP_ACCEPT=BROWSER).content.decode()

    nav = re.search(r'<nav class="pages"[^>]*>(.*?)</nav>', text, re.S)
    assert nav
    assert re.findall(r'href="([^"]+)"(?: aria-current="(\w+)")?>(\w+)<', nav.group(1)) == [
        ("/api/gpu/dashboard", "", "Dashboard"),
        ("/api/gpu/fleet", "", "Fleet"),
        ("/api/gpu/usage", "page", "Usage"),
    ]
