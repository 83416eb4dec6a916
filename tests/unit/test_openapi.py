"""The OpenAPI schema (drf-spectacular) and the offline documentation pages."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

OPERATIONS = {  # every operation can be 503: a misconfigured GPU_MONITOR fails closed
    "/api/gpu/devices/": {"200", "401", "403", "405", "429", "503"},
    "/api/gpu/devices/{gpu}/": {"200", "401", "403", "404", "405", "429", "503"},
    "/api/gpu/devices/{gpu}/processes/": {"200", "401", "403", "404", "405", "429", "503"},
    "/api/gpu/processes/": {"200", "401", "403", "405", "429", "503"},
    "/api/gpu/driver/": {"200", "401", "403", "405", "429", "503"},
    "/api/gpu/status/": {"200", "401", "403", "405", "429", "503"},
    "/api/gpu/metrics/": {"200", "401", "403", "405", "429", "501", "503"},
    "/api/gpu/history/": {"200", "400", "401", "403", "404", "405", "429", "503"},
    "/api/gpu/events/": {"200", "400", "401", "403", "404", "405", "429", "503"},
    "/api/gpu/hosts/": {"200", "400", "401", "403", "405", "429", "503"},
    "/api/gpu/hosts/{host}/": {"200", "400", "401", "403", "404", "405", "429", "503"},
    "/api/gpu/hosts/{host}/processes/": {"200", "400", "401", "403", "404", "405", "429", "503"},
    "/api/gpu/usage/": {"200", "400", "401", "403", "404", "405", "429", "503"},
    "/api/gpu/usage/idle/": {"200", "400", "401", "403", "404", "405", "429", "503"},
    "/api/gpu/ingest/": {"200", "400", "401", "403", "405", "411", "413", "415", "429", "503"},
}
POSTED = {"/api/gpu/ingest/"}  # the one operation that is not a GET: the nodes' pushes


def method(path: str) -> str:
    return "post" if path in POSTED else "get"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    loaded: dict[str, Any] = yaml.safe_load(out.getvalue())
    return loaded


def test_schema_validates_without_warnings_and_lists_every_operation(
    schema: dict[str, Any],
) -> None:
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == set(OPERATIONS)
    for path, statuses in OPERATIONS.items():
        operation = schema["paths"][path]
        assert list(operation) == [method(path)], path
        assert set(operation[method(path)]["responses"]) == statuses, path


def test_every_response_has_an_example(schema: dict[str, Any]) -> None:
    for path, operation in schema["paths"].items():
        for status, response in operation[method(path)]["responses"].items():
            for media_type, content in response["content"].items():
                assert content["examples"], (path, status, media_type)


def test_metrics_are_documented_as_text(schema: dict[str, Any]) -> None:
    ok = schema["paths"]["/api/gpu/metrics/"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/plain"]
    assert ok["content"]["text/plain"]["schema"] == {"type": "string"}


def test_device_schema_mirrors_the_serializer(schema: dict[str, Any]) -> None:
    device = schema["components"]["schemas"]["GPUDevice"]
    assert device["properties"]["temperature_c"] == {
        "type": "integer",
        "readOnly": True,
        "nullable": True,
    }
    assert device["properties"]["field_errors"]["additionalProperties"] == {"type": "string"}
    assert "uuid" in device["required"]


def test_index_parameter_accepts_index_or_uuid(schema: dict[str, Any]) -> None:
    (parameter,) = schema["paths"]["/api/gpu/devices/{gpu}/"]["get"]["parameters"]
    assert parameter["schema"]["pattern"] == r"^([0-9]+|(GPU|MIG)-[0-9A-Za-z-]{1,80})$"


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_use_local_assets_only(client: Client, path: str) -> None:
    response = client.get(path)
    html = response.content.decode()
    # Every script, stylesheet and icon the page loads. The page also embeds a random
    # CSRF token, so the test looks at the URLs, never at substrings of the whole page.
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"', html)

    assert response.status_code == 200
    assert any(url.endswith(".js") for url in assets), assets
    assert all(url.startswith("/static/drf_spectacular_sidecar/") for url in assets), assets
    assert not re.search(r"\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE)


def test_schema_endpoint_serves_json(client: Client) -> None:
    response = client.get("/api/schema/?format=json")

    assert response.status_code == 200
    assert "/api/gpu/devices/" in response.json()["paths"]


ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def example_times(value: Any) -> list[str]:
    """Every string in ``value`` (an example, nested) that starts like an ISO 8601 time."""
    if isinstance(value, dict):
        return [t for item in value.values() for t in example_times(item)]
    if isinstance(value, list):
        return [t for item in value for t in example_times(item)]
    return [value] if isinstance(value, str) and ISO_TIME.match(value) else []


def test_every_time_in_an_example_is_utc_with_a_z(schema: dict[str, Any]) -> None:
    # The API writes each time with params.iso: to the second, in UTC, with a Z.
    times = [
        time
        for path, operation in schema["paths"].items()
        for response in operation[method(path)]["responses"].values()
        for content in response["content"].values()
        for example in content["examples"].values()
        for time in example_times(example["value"])
    ]
    assert "2026-07-14T08:11:52Z" in times  # a process's started_at
    assert [t for t in times if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t)] == []
