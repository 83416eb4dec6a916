"""An answer to HEAD has no body (RFC 9110; WSGI leaves that to the application, and
gunicorn logs a line for every HEAD whose answer has one), and its Content-Length is
what GET sends. Django's test client drops a HEAD body itself, so these call the views
through a RequestFactory and render as the handler does."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from django.test import RequestFactory, override_settings
from django.urls import resolve

pytestmark = pytest.mark.django_db
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
PATHS = ["/api/gpu/status", "/api/gpu/devices/", "/api/gpu/dashboard/", "/api/gpu/nothing-here"]


def answer(method: str, path: str, **headers: Any) -> Any:
    request = getattr(RequestFactory(), method)(path, **headers)
    match = resolve(path)
    request.resolver_match = match  # as the handler sets it (the pages reverse by it)
    response = match.func(request, *match.args, **match.kwargs)
    return response.render() if hasattr(response, "render") else response


@pytest.mark.parametrize("path", PATHS)
def test_head_has_no_body_and_gets_length(fake_nvml: ModuleType, path: str) -> None:
    with override_settings(GPU_MONITOR=OPEN):
        got, head = answer("get", path), answer("head", path)

    assert got.content
    assert head.content == b""
    assert (head.status_code, head["Content-Type"]) == (got.status_code, got["Content-Type"])
    assert head["Content-Length"] == str(len(got.content))


def test_options_of_a_page_is_unchanged(fake_nvml: ModuleType) -> None:
    response = answer("options", "/api/gpu/dashboard/")

    assert (response.status_code, response.content) == (200, b"")
    assert "GET" in response["Allow"]
