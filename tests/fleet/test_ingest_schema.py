"""POST api/gpu/ingest's OpenAPI description: a POST only, every status with an
example, the host token as an HTTP bearer scheme; the schema validates without a
warning."""

from __future__ import annotations

import io
from typing import Any

import pytest
import yaml
from django.core.management import call_command

STATUSES = {"200", "400", "401", "403", "405", "411", "413", "415", "429", "503"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    pytest.importorskip("drf_spectacular")
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    loaded: dict[str, Any] = yaml.safe_load(out.getvalue())
    return loaded


def test_ingest_is_a_post_with_every_answer_and_an_example_each(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/gpu/ingest/"]

    assert list(operation) == ["post"]
    post = operation["post"]
    assert post["operationId"] == "gpu_ingest"
    assert set(post["responses"]) == STATUSES
    for status, response in post["responses"].items():
        for content in response["content"].values():
            assert content["examples"], status
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert post["security"] == [{"hostToken": []}]
    assert schema["components"]["securitySchemes"]["hostToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "gpumon_...",
    }


def test_no_other_operation_takes_the_host_token(schema: dict[str, Any]) -> None:
    others = [
        path
        for path, operation in schema["paths"].items()
        for method in operation.values()
        if {"hostToken": []} in method.get("security", []) and path != "/api/gpu/ingest/"
    ]

    assert others == []
